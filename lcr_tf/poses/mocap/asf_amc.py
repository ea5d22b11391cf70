"""Acclaim ASF (skeleton) + AMC (motion) reader and forward kinematics, vectorised over frames.

ASF sections read: ``:units`` (``mass``, ``length``, ``angle deg|rad``), ``:root`` (``order``, ``axis``,
``position``, ``orientation``), ``:bonedata`` (``begin`` ... ``end`` blocks with ``id``, ``name``,
``direction``, ``length``, ``axis ax ay az ORDER``, ``dof``, ``limits``) and ``:hierarchy``. Commas and
parentheses count as spaces, ``#`` starts a comment. AMC: optional ``:FULLY-SPECIFIED``, ``:DEGREES`` /
``:RADIANS``, then frames, each a frame-number line followed by ``bonename value ...`` lines (the root's
values in its ``order``, a bone's in its ``dof`` order).

Forward kinematics, as the format defines it (column vectors; ``R_a`` = right-handed rotation about a):

* ``axis ax ay az XYZ`` gives the bone's axis frame ``C``: rotations about the fixed axes in the order
  named, i.e. for ``XYZ``: ``C = Rz(az) @ Ry(ay) @ Rx(ax)``.
* The dof values give the local motion ``M``, the rotations applied in dof order about the fixed axes
  of ``C``: ``dof rx ry rz`` gives ``M = Rz @ Ry @ Rx``; ``dof rz rx`` gives ``M = Rx @ Rz``.
* The bone's world rotation is ``R = R_parent @ C @ M @ C^-1``; the bone starts where its parent ends
  (the root's position for a child of the root) and ends at ``start + R @ (direction * length)``, so the
  ASF's ``direction`` is in world axes of the rest pose (all ``M`` = identity).
* The root: rotation ``R_root = O @ M_root`` where ``O`` is the ``orientation`` preset composed in the
  ``axis`` order and ``M_root`` the AMC's rotation values composed in the ``order`` order (fixed axes,
  as above); position ``position + (TX, TY, TZ)``.

Length unit: ``:units length L`` means file lengths are inches times L (CMU uses L = 0.45), so
``metres = value / L * 0.0254``. Angles follow the AMC's ``:DEGREES`` / ``:RADIANS`` if it says, else the
ASF's ``angle``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np

from lcr_tf.contracts.geometry import euler_to_matrix
from lcr_tf.poses.mocap import MocapError, SkeletonMotion

INCH_M = 0.0254
CMU_LENGTH_MULTIPLIER = 0.45
_AXES = {"x": 0, "y": 1, "z": 2}
_ROTATION_DOFS = {"rx": 0, "ry": 1, "rz": 2}
_TRANSLATION_DOFS = {"tx": 0, "ty": 1, "tz": 2}


@dataclasses.dataclass
class AsfSkeleton:
    """A parsed ASF. Bone 0 is ``root``; bones are ordered parents first.

    Attributes:
      bone_names: (B,) names, ``"root"`` first.
      parents: (B,) int64, -1 for the root.
      directions: (B, 3) unit vectors in rest-pose world axes (zero for the root).
      lengths: (B,) file length unit (zero for the root).
      axis_angles: (B, 3) radians, the ``axis`` values about x, y, z (root: its ``orientation``).
      axis_orders: per bone, the axis indices in the order the ``axis`` rotations apply.
      dofs: per bone, its dof tokens (lower case); for the root, its ``order`` tokens.
      root_position: (3,) file length unit.
      length_multiplier: ``:units length``; angle_unit: ``"deg"`` or ``"rad"``.
    """

    path: str
    bone_names: Tuple[str, ...]
    parents: np.ndarray
    directions: np.ndarray
    lengths: np.ndarray
    axis_angles: np.ndarray
    axis_orders: Tuple[Tuple[int, ...], ...]
    dofs: Tuple[Tuple[str, ...], ...]
    root_position: np.ndarray
    length_multiplier: float = 1.0
    angle_unit: str = "deg"

    @property
    def metres_per_unit(self) -> float:
        return INCH_M / self.length_multiplier

    @property
    def length_unit(self) -> str:
        if math.isclose(self.length_multiplier, CMU_LENGTH_MULTIPLIER, rel_tol=1e-9):
            return "cmu"
        if math.isclose(self.length_multiplier, 1.0, rel_tol=1e-9):
            return "inch"
        return f"inch/{self.length_multiplier:g}"

    def index(self, name: str) -> int:
        return self.bone_names.index(name)


def _clean(line: str) -> List[str]:
    return line.split("#", 1)[0].replace(",", " ").replace("(", " ").replace(")", " ").split()


def _floats(path: str, lineno: int, toks: List[str], count: int, what: str) -> List[float]:
    if len(toks) < count:
        raise MocapError(path, f"line {lineno}: {what} needs {count} numbers, found {len(toks)}")
    out = []
    for t in toks[:count]:
        try:
            v = float(t)
        except ValueError:
            raise MocapError(path, f"line {lineno}: non-numeric {what} value {t!r}") from None
        if not math.isfinite(v):
            raise MocapError(path, f"line {lineno}: {what} value {t!r} is not finite")
        out.append(v)
    return out


def _axis_order(path: str, lineno: int, token: str, what: str) -> Tuple[int, ...]:
    order = tuple(_AXES.get(c) for c in token.lower())
    if len(order) != 3 or None in order or len(set(order)) != 3:
        raise MocapError(path, f"line {lineno}: {what} order {token!r} is not a permutation of XYZ")
    return order


def parse_asf_text(text: str, path: str = "<string>") -> AsfSkeleton:
    """Parses ASF text; raises :class:`MocapError` naming ``path`` and the line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    section = None
    units = {"length": 1.0, "angle": "deg"}
    root: Dict[str, object] = {}
    bones: List[Dict[str, object]] = []
    bone: Optional[Dict[str, object]] = None
    field = None
    hierarchy: List[Tuple[int, List[str]]] = []
    seen = set()
    for lineno, raw in enumerate(lines, 1):
        toks = _clean(raw)
        if not toks:
            continue
        key = toks[0].lower()
        if key.startswith(":"):
            section = key
            seen.add(section)
            if bone is not None:
                raise MocapError(path, f"line {lineno}: bone {bone.get('name', '?')!r} has no 'end'")
            continue
        if section == ":units":
            if key == "length":
                units["length"] = _floats(path, lineno, toks[1:], 1, "units length")[0]
                if units["length"] <= 0:
                    raise MocapError(path, f"line {lineno}: units length must be positive")
            elif key == "angle":
                if len(toks) < 2 or toks[1].lower() not in ("deg", "rad"):
                    raise MocapError(path, f"line {lineno}: units angle must be 'deg' or 'rad'")
                units["angle"] = toks[1].lower()
        elif section == ":root":
            if key == "order":
                root["order"] = tuple(t.lower() for t in toks[1:])
                root["order_line"] = lineno
            elif key == "axis":
                root["axis"] = _axis_order(path, lineno, toks[1] if len(toks) > 1 else "", "root axis")
            elif key == "position":
                root["position"] = _floats(path, lineno, toks[1:], 3, "root position")
            elif key == "orientation":
                root["orientation"] = _floats(path, lineno, toks[1:], 3, "root orientation")
            else:
                raise MocapError(path, f"line {lineno}: unknown :root field {toks[0]!r}")
        elif section == ":bonedata":
            if key == "begin":
                if bone is not None:
                    raise MocapError(path, f"line {lineno}: 'begin' inside bone {bone.get('name', '?')!r}")
                bone, field = {"line": lineno}, None
            elif key == "end":
                if bone is None:
                    raise MocapError(path, f"line {lineno}: 'end' without 'begin'")
                for req in ("name", "direction", "length"):
                    if req not in bone:
                        raise MocapError(path, f"bone block at line {bone['line']}: missing {req!r}")
                bones.append(bone)
                bone = None
            elif bone is None:
                raise MocapError(path, f"line {lineno}: {toks[0]!r} outside a bone's begin/end")
            elif key == "name":
                bone["name"] = toks[1] if len(toks) > 1 else ""
            elif key == "direction":
                bone["direction"] = _floats(path, lineno, toks[1:], 3, f"direction of {bone.get('name')!r}")
            elif key == "length":
                bone["length"] = _floats(path, lineno, toks[1:], 1, f"length of {bone.get('name')!r}")[0]
            elif key == "axis":
                bone["axis"] = _floats(path, lineno, toks[1:], 3, f"axis of {bone.get('name')!r}")
                bone["axis_order"] = _axis_order(path, lineno, toks[4] if len(toks) > 4 else "XYZ",
                                                 f"axis of bone {bone.get('name')!r}")
            elif key == "dof":
                dofs = tuple(t.lower() for t in toks[1:])
                for d in dofs:
                    if d not in _ROTATION_DOFS:
                        what = "unsupported" if d in _TRANSLATION_DOFS or d == "l" else "unknown"
                        raise MocapError(path, f"line {lineno}: {what} dof {d!r} in bone {bone.get('name')!r} "
                                               f"(rx, ry, rz are read)")
                bone["dof"] = dofs
            elif key in ("id", "limits", "bodymass", "cofmass"):
                field = key
            elif field == "limits":
                pass  # continuation lines of 'limits' (one pair per dof); the limits are not enforced
            else:
                raise MocapError(path, f"line {lineno}: unknown bone field {toks[0]!r} in bone "
                                       f"{bone.get('name')!r}")
        elif section == ":hierarchy":
            if key in ("begin", "end"):
                continue
            hierarchy.append((lineno, toks))
    if bone is not None:
        raise MocapError(path, f"bone block at line {bone['line']} has no 'end'")
    for sec in (":root", ":bonedata", ":hierarchy"):
        if sec not in seen:
            raise MocapError(path, f"missing {sec} section")
    return _assemble(path, units, root, bones, hierarchy)


def _assemble(path, units, root, bones, hierarchy) -> AsfSkeleton:
    by_name = {}
    for b in bones:
        if b["name"] in by_name or b["name"] == "root":
            raise MocapError(path, f"line {b['line']}: bone name {b['name']!r} is used twice")
        by_name[b["name"]] = b
    order = root.get("order", ("tx", "ty", "tz", "rx", "ry", "rz"))
    for d in order:
        if d not in _ROTATION_DOFS and d not in _TRANSLATION_DOFS:
            raise MocapError(path, f"line {root.get('order_line', '?')}: unknown root order token {d!r}")
    children: Dict[str, List[str]] = {}
    parent_of: Dict[str, str] = {}
    for lineno, toks in hierarchy:
        par = toks[0]
        if par != "root" and par not in by_name:
            raise MocapError(path, f"line {lineno}: :hierarchy names unknown bone {par!r}")
        for child in toks[1:]:
            if child not in by_name:
                raise MocapError(path, f"line {lineno}: :hierarchy names unknown bone {child!r}")
            if child in parent_of:
                raise MocapError(path, f"line {lineno}: bone {child!r} has two parents")
            parent_of[child] = par
            children.setdefault(par, []).append(child)
    names = ["root"]
    k = 0
    while k < len(names):  # breadth-first from the root: parents before children
        names.extend(children.get(names[k], []))
        k += 1
    orphans = [b for b in by_name if b not in set(names)]
    if orphans:
        raise MocapError(path, f"bone(s) {orphans} not reachable from root in :hierarchy")
    index = {n: i for i, n in enumerate(names)}
    parents = np.array([-1] + [index[parent_of[n]] for n in names[1:]], np.int64)
    directions = np.zeros((len(names), 3))
    lengths = np.zeros(len(names))
    axis_angles = np.zeros((len(names), 3))
    axis_orders = [root.get("axis", (0, 1, 2))]
    dofs = [tuple(order)]
    axis_angles[0] = root.get("orientation", (0.0, 0.0, 0.0))
    for i, n in enumerate(names[1:], 1):
        b = by_name[n]
        d = np.asarray(b["direction"], np.float64)
        norm = np.linalg.norm(d)
        directions[i] = d / norm if norm > 0 else d
        lengths[i] = b["length"]
        axis_angles[i] = b.get("axis", (0.0, 0.0, 0.0))
        axis_orders.append(b.get("axis_order", (0, 1, 2)))
        dofs.append(b.get("dof", ()))
    if units["angle"] == "deg":
        axis_angles = np.deg2rad(axis_angles)
    return AsfSkeleton(path=path, bone_names=tuple(names), parents=parents, directions=directions,
                       lengths=lengths, axis_angles=axis_angles, axis_orders=tuple(axis_orders),
                       dofs=tuple(dofs), root_position=np.asarray(root.get("position", (0.0, 0.0, 0.0))),
                       length_multiplier=float(units["length"]), angle_unit=units["angle"])


def parse_asf(path: str) -> AsfSkeleton:
    """Reads and parses an ``.asf`` file."""
    if not os.path.isfile(path):
        raise MocapError(path, "no skeleton file: the ASF does not exist")
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        return parse_asf_text(f.read(), str(path))


@dataclasses.dataclass
class AmcMotion:
    """Parsed AMC values: ``values[bone]`` is (F, len(dofs)) in radians (lengths in file units for the
    root's translations), ``frame_numbers`` (F,) the numbers written in the file."""

    path: str
    values: Dict[str, np.ndarray]
    frame_numbers: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.frame_numbers.shape[0])


_FRAME_LINE = re.compile(r"^[ \t]*(\d+)[ \t]*$", re.M)
_NAME_AT_LINE_START = re.compile(r"^[ \t]*([^\s\d][^\s]*)", re.M)


def parse_amc_text(text: str, asf: AsfSkeleton, path: str = "<string>") -> AmcMotion:
    """Parses AMC text against its skeleton; raises :class:`MocapError` naming ``path``, line, frame, bone.

    Files whose frames all list the same bones in the same order (as exporters write them) are read in
    one vectorised pass over all tokens; any other layout, and every file with an error, goes through a
    line-by-line reader that accepts any bone order and reports the exact line.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    angle_unit = asf.angle_unit
    for keyword in re.findall(r"^[ \t]*(:\S+)", text, re.M):
        if keyword.upper() == ":DEGREES":
            angle_unit = "deg"
        elif keyword.upper() == ":RADIANS":
            angle_unit = "rad"
    parsed = _amc_rows_fast(text, asf)
    if parsed is None:
        parsed = _amc_rows_by_line(text, asf, path)
    frame_numbers, values = parsed
    if angle_unit == "deg":
        for name, arr in values.items():
            rot = np.array([d in _ROTATION_DOFS for d in asf.dofs[asf.index(name)]])
            arr[:, rot] = np.deg2rad(arr[:, rot])
    return AmcMotion(path, values, frame_numbers)


def _amc_rows_fast(text: str, asf: AsfSkeleton) -> Optional[Tuple[np.ndarray, Dict[str, np.ndarray]]]:
    """(frame numbers, raw values per bone) when every frame repeats the first frame's bone lines, all
    values are finite numbers and the dof counts fit; else None (the caller then reads line by line).

    Each bone's lines are gathered across all frames with one list slice (a loop over bones, not frames)
    and converted in one call."""
    first = _FRAME_LINE.search(text)
    if first is None:
        return None
    header, body = text[:first.start()], text[first.start():]
    if "#" in body or ":" in body or _NAME_AT_LINE_START.search(re.sub(r"^[ \t]*(#|:).*$", "", header,
                                                                         flags=re.M)):
        return None
    body = re.sub(r"\n(?:[ \t]*\n)+", "\n", body).rstrip()
    lines = body.split("\n")
    frame_numbers = _FRAME_LINE.findall(body)
    num_frames = len(frame_numbers)
    if len(lines) % num_frames:
        return None
    stride = len(lines) // num_frames
    if " ".join(lines[0::stride]).split() != frame_numbers:
        return None
    order = [line.split(None, 1)[0] for line in lines[1:stride]]
    dof_count = {n: len(d) for n, d in zip(asf.bone_names, asf.dofs)}
    if len(set(order)) != len(order) or set(order) != {n for n, c in dof_count.items() if c}:
        return None
    values = {}
    for k, name in enumerate(order):
        width = dof_count[name]
        toks = " ".join(lines[1 + k::stride]).split()
        # The bone's name every (1 + width) tokens proves each of its lines has exactly width values.
        if len(toks) != num_frames * (1 + width) or toks[0::1 + width] != [name] * num_frames:
            return None
        del toks[0::1 + width]
        try:
            arr = np.array(toks, dtype=np.float64).reshape(num_frames, width)
        except ValueError:
            return None
        if not np.isfinite(arr).all():
            return None
        values[name] = arr
    return np.asarray(frame_numbers, np.int64), values


def _amc_rows_by_line(text: str, asf: AsfSkeleton, path: str) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    lines = text.split("\n")
    dof_count = {n: len(d) for n, d in zip(asf.bone_names, asf.dofs)}
    rows: Dict[str, List[List[str]]] = {n: [] for n, c in dof_count.items() if c}
    row_frames: Dict[str, List[int]] = {n: [] for n in rows}
    row_lines: Dict[str, List[int]] = {n: [] for n in rows}
    frame_numbers: List[int] = []
    frame_lines: List[int] = []
    for lineno, raw in enumerate(lines, 1):
        toks = raw.split("#", 1)[0].split()
        if not toks:
            continue
        head = toks[0]
        if head.startswith(":"):
            continue
        if len(toks) == 1 and head.isdigit():
            frame_numbers.append(int(head))
            frame_lines.append(lineno)
            continue
        if not frame_numbers:
            raise MocapError(path, f"line {lineno}: {head!r} before the first frame number")
        frame = len(frame_numbers) - 1
        expected = dof_count.get(head)
        if expected is None:
            raise MocapError(path, f"line {lineno} (frame {frame}): unknown bone {head!r} "
                                   f"(not in {os.path.basename(asf.path)})")
        if len(toks) - 1 != expected:
            raise MocapError(path, f"line {lineno} (frame {frame}): bone {head!r} has {len(toks) - 1} values, "
                                   f"its dof count is {expected}")
        rows[head].append(toks[1:])
        row_frames[head].append(frame)
        row_lines[head].append(lineno)
    num_frames = len(frame_numbers)
    if num_frames == 0:
        raise MocapError(path, "no frames")
    values: Dict[str, np.ndarray] = {}
    all_frames = np.arange(num_frames)
    for name, toks in rows.items():
        frames = np.asarray(row_frames[name], np.int64)
        if frames.shape[0] != num_frames or np.any(frames != all_frames):
            present = np.zeros(num_frames, np.int64)
            np.add.at(present, frames, 1)
            if np.any(present > 1):
                f = int(np.argmax(present > 1))
                raise MocapError(path, f"frame {f} (line {frame_lines[f]}): bone {name!r} appears twice")
            f = int(np.argmax(present == 0))
            missing = sorted(n for n in rows if f not in set(row_frames[n]))
            kind = "truncated frame" if f == num_frames - 1 else "incomplete frame"
            raise MocapError(path, f"{kind}: frame {f} (line {frame_lines[f]}) lacks bone(s) {missing}")
        try:
            arr = np.asarray(toks, dtype=np.float64)
        except ValueError:
            for r, tk in enumerate(toks):
                for t in tk:
                    try:
                        float(t)
                    except ValueError:
                        raise MocapError(path, f"line {row_lines[name][r]} (frame {r}): non-numeric value "
                                               f"{t!r} for bone {name!r}") from None
            raise
        bad = ~np.isfinite(arr)
        if bad.any():
            r, c = (int(v) for v in np.argwhere(bad)[0])
            raise MocapError(path, f"line {row_lines[name][r]} (frame {r}): {arr[r, c]} for bone {name!r} "
                                   f"dof {asf.dofs[asf.index(name)][c]}")
        values[name] = arr
    return np.asarray(frame_numbers, np.int64), values


def parse_amc(path: str, asf: AsfSkeleton) -> AmcMotion:
    """Reads and parses an ``.amc`` file against ``asf``."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise MocapError(path, f"cannot read the file ({e.strerror or e})") from None
    return parse_amc_text(text, asf, str(path))


def _fixed_axes_rotation(angles_rad: np.ndarray, order: Tuple[int, ...]) -> np.ndarray:
    """Rotations about fixed axes applied in ``order``: (..., K) radians (K = len(order), the k-th about
    axis ``order[k]``) -> ``R_order[-1] @ ... @ R_order[0]``."""
    angles = np.asarray(angles_rad, np.float64)
    return euler_to_matrix(np.rad2deg(angles[..., ::-1]), tuple(order)[::-1])


def forward_kinematics(asf: AsfSkeleton, amc: AmcMotion) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bone start points, end points and world rotations for every frame (file length unit, Y up).

    Returns:
      starts (F, B, 3), ends (F, B, 3), rotations (F, B, 3, 3); bone 0 is the root (start = end).
    """
    n = amc.num_frames
    num_bones = len(asf.bone_names)
    starts = np.empty((n, num_bones, 3))
    ends = np.empty((n, num_bones, 3))
    rotations = np.empty((n, num_bones, 3, 3))
    # Root: translation and rotation channels in its 'order', rotations about fixed axes in that order.
    order = asf.dofs[0]
    root_vals = amc.values.get("root", np.zeros((n, 0)))
    rot_k = [k for k, d in enumerate(order) if d in _ROTATION_DOFS]
    trans = np.zeros((n, 3))
    for k, d in enumerate(order):
        if d in _TRANSLATION_DOFS:
            trans[:, _TRANSLATION_DOFS[d]] = root_vals[:, k]
    preset = _fixed_axes_rotation(asf.axis_angles[0][list(asf.axis_orders[0])], asf.axis_orders[0])
    motion = _fixed_axes_rotation(root_vals[:, rot_k], tuple(_ROTATION_DOFS[order[k]] for k in rot_k))
    rotations[:, 0] = preset @ motion
    starts[:, 0] = asf.root_position + trans
    ends[:, 0] = starts[:, 0]
    # One pass over the bones (parents first), each vectorised over frames.
    for i in range(1, num_bones):
        p = asf.parents[i]
        axis = _fixed_axes_rotation(asf.axis_angles[i][list(asf.axis_orders[i])], asf.axis_orders[i])
        dofs = asf.dofs[i]
        if dofs:
            local = _fixed_axes_rotation(amc.values[asf.bone_names[i]], tuple(_ROTATION_DOFS[d] for d in dofs))
            rotations[:, i] = rotations[:, p] @ (axis @ local @ axis.T)
        else:
            rotations[:, i] = rotations[:, p]
        starts[:, i] = ends[:, p]
        ends[:, i] = starts[:, i] + rotations[:, i] @ (asf.directions[i] * asf.lengths[i])
    return starts, ends, rotations


def read_asf_amc(asf_path: str, amc_path: str) -> SkeletonMotion:
    """Parses an ASF and an AMC and runs :func:`forward_kinematics` (file length unit, Y up).

    The frame time is 1/120 s, CMU's rate: AMC files do not store one.
    """
    asf = parse_asf(asf_path)
    amc = parse_amc(amc_path, asf)
    starts, ends, rotations = forward_kinematics(asf, amc)
    offsets = np.zeros((len(asf.bone_names), 3))
    offsets[1:] = (asf.directions * asf.lengths[:, None])[asf.parents[1:]]
    return SkeletonMotion(path=str(amc_path), source_format="amc", joint_names=asf.bone_names,
                          parents=asf.parents, offsets=offsets, origins=starts, ends=ends,
                          rotations=rotations, frame_time=1.0 / 120.0,
                          metres_per_unit=asf.metres_per_unit, length_unit=asf.length_unit)
