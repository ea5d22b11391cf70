"""BVH (Biovision hierarchy) reader and forward kinematics, vectorised over frames.

Format handled::

    HIERARCHY
    ROOT name { OFFSET x y z  CHANNELS n c1 .. cn  (JOINT name { ... } | End Site { OFFSET x y z })* }
    MOTION
    Frames: F
    Frame Time: t
    F rows of sum(n) numbers, the joints' channels in the order the joints appear above

Channels are ``Xposition Yposition Zposition Xrotation Yrotation Zrotation`` in any order and number on
any joint (root or not). Angles are degrees. Conventions of the forward kinematics:

* A joint's local rotation composes its rotation channels in the order listed, as intrinsic rotations:
  ``CHANNELS 3 Zrotation Xrotation Yrotation`` gives ``R = Rz @ Rx @ Ry`` (column vectors), so a point
  ``v`` of the joint's frame is at ``W_parent @ (t + R @ v)``.
* Position channels give the joint's translation from its parent's origin (in the parent's frame) and
  REPLACE the matching component of the OFFSET: exporters that write position channels write the full
  local translation, which equals the OFFSET at rest. A component without a channel keeps the OFFSET.
* ``W_j = W_parent @ R_j`` and ``p_j = p_parent + W_parent @ t_j``; an End Site is at
  ``p_j + W_j @ end_offset``.
* Elementary rotations are right-handed: ``Rx(a) = [[1, 0, 0], [0, cos a, -sin a], [0, sin a, cos a]]``,
  and likewise for y and z.

Lengths stay in the file's unit (BVH declares none; see :func:`lcr_tf.poses.mocap.rigs.infer_length_unit`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Tuple

import numpy as np

from lcr_tf.contracts.geometry import euler_to_matrix
from lcr_tf.poses.mocap import MocapError, SkeletonMotion

POSITION_CHANNELS = {"xposition": 0, "yposition": 1, "zposition": 2}
ROTATION_CHANNELS = {"xrotation": 0, "yrotation": 1, "zrotation": 2}


@dataclasses.dataclass
class BvhSkeleton:
    """The HIERARCHY section.

    Attributes:
      joint_names: (J,) in file order (parents before children).
      parents: (J,) int64, -1 for the root.
      offsets: (J, 3) float64, OFFSET of each joint, file length unit.
      channels: per joint, its channel names as written (e.g. ``("Zrotation", "Xrotation", "Yrotation")``).
      end_offsets: (J, 3) float64, OFFSET of the joint's End Site, NaN where it has none.
    """

    joint_names: Tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    channels: Tuple[Tuple[str, ...], ...]
    end_offsets: np.ndarray

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def channel_labels(self) -> List[str]:
        """``"joint.channel"`` for every column of the motion rows."""
        return [f"{j}.{c}" for j, chans in zip(self.joint_names, self.channels) for c in chans]


@dataclasses.dataclass
class BvhFile:
    """A parsed BVH file: skeleton, ``frame_time`` (s) and ``motion`` (F, C) float64 channel values."""

    path: str
    skeleton: BvhSkeleton
    frame_time: float
    motion: np.ndarray


def _tokens(text: str):
    """(token, line number) pairs of the HIERARCHY text; braces are tokens even when glued to a word."""
    for lineno, line in enumerate(text.split("\n"), 1):
        for tok in line.replace("{", " { ").replace("}", " } ").split():
            yield tok, lineno


class _TokenStream:
    def __init__(self, path: str, text: str):
        self.path = path
        self._toks = list(_tokens(text))
        self.pos = 0

    def peek(self) -> Optional[Tuple[str, int]]:
        return self._toks[self.pos] if self.pos < len(self._toks) else None

    @property
    def last_line(self) -> int:
        return self._toks[-1][1] if self._toks else 1

    def next(self, what: str) -> Tuple[str, int]:
        if self.pos >= len(self._toks):
            raise MocapError(self.path, f"HIERARCHY ends (line {self.last_line}) where {what} was expected")
        tok = self._toks[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str, context: str) -> int:
        tok, line = self.next(f"{word!r} ({context})")
        if tok != word:
            if word == "}" or tok == "}":
                raise MocapError(self.path, f"line {line}: unbalanced braces: expected {word!r} ({context}), "
                                            f"found {tok!r}")
            raise MocapError(self.path, f"line {line}: expected {word!r} ({context}), found {tok!r}")
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise MocapError(self.path, f"line {line}: non-numeric {what}: {tok!r}") from None
        if not math.isfinite(value):
            raise MocapError(self.path, f"line {line}: {what} is {tok!r}, not a finite number")
        return value

    def integer(self, what: str) -> int:
        tok, line = self.next(what)
        try:
            return int(tok)
        except ValueError:
            raise MocapError(self.path, f"line {line}: {what} must be an integer, found {tok!r}") from None


def _parse_hierarchy(path: str, text: str) -> BvhSkeleton:
    opens, closes = text.count("{"), text.count("}")
    if opens != closes:
        depth, line_of_error = 0, None
        for lineno, line in enumerate(text.split("\n"), 1):
            for ch in line:
                depth += (ch == "{") - (ch == "}")
                if depth < 0 and line_of_error is None:
                    line_of_error = lineno
        where = (f"'}}' at line {line_of_error} closes nothing" if line_of_error is not None
                 else f"{opens - closes} '{{' not closed before MOTION")
        raise MocapError(path, f"unbalanced braces in HIERARCHY: {opens} '{{' and {closes} '}}' ({where})")
    ts = _TokenStream(path, text)
    tok, line = ts.next("'HIERARCHY'")
    if tok.upper() != "HIERARCHY":
        raise MocapError(path, f"line {line}: expected 'HIERARCHY', found {tok!r}")
    names: List[str] = []
    parents: List[int] = []
    offsets: List[Tuple[float, float, float]] = []
    channels: List[Tuple[str, ...]] = []
    ends: dict = {}

    def parse_offset(owner: str) -> Tuple[float, float, float]:
        ts.expect("OFFSET", f"in {owner}")
        return tuple(ts.number(f"OFFSET value of {owner}") for _ in range(3))

    def parse_joint(name: str, parent: int, line: int) -> None:
        if name in names:
            raise MocapError(path, f"line {line}: joint name {name!r} is used twice")
        index = len(names)
        names.append(name)
        parents.append(parent)
        ts.expect("{", f"after joint {name!r}")
        offsets.append(parse_offset(f"joint {name!r}"))
        chans: Tuple[str, ...] = ()
        nxt = ts.peek()
        if nxt is not None and nxt[0] == "CHANNELS":
            ts.next("CHANNELS")
            count = ts.integer(f"channel count of joint {name!r}")
            if count < 0:
                raise MocapError(path, f"joint {name!r}: negative channel count {count}")
            chan_list = []
            for _ in range(count):
                c, cline = ts.next(f"a channel name of joint {name!r}")
                if c.lower() not in POSITION_CHANNELS and c.lower() not in ROTATION_CHANNELS:
                    raise MocapError(path, f"line {cline}: unknown channel name {c!r} in joint {name!r}")
                chan_list.append(c)
            if len({c.lower() for c in chan_list}) != len(chan_list):
                raise MocapError(path, f"joint {name!r}: a channel is repeated in {chan_list}")
            chans = tuple(chan_list)
        channels.append(chans)
        while True:
            tok, tline = ts.next(f"'}}' closing joint {name!r}")
            if tok == "}":
                return
            if tok == "JOINT":
                child, cline = ts.next("a joint name")
                parse_joint(child, index, cline)
            elif tok == "End":
                site, sline = ts.next("'Site'")
                if site != "Site":
                    raise MocapError(path, f"line {sline}: expected 'End Site', found 'End {site}'")
                if index in ends:
                    raise MocapError(path, f"line {sline}: joint {name!r} has a second End Site")
                ts.expect("{", f"after End Site of {name!r}")
                ends[index] = parse_offset(f"End Site of {name!r}")
                ts.expect("}", f"closing the End Site of {name!r}")
            elif tok == "{":
                raise MocapError(path, f"line {tline}: unbalanced braces: '{{' opens no joint in {name!r}")
            else:
                raise MocapError(path, f"line {tline}: unexpected {tok!r} in joint {name!r}")

    tok, line = ts.next("'ROOT'")
    if tok != "ROOT":
        raise MocapError(path, f"line {line}: expected 'ROOT', found {tok!r}")
    root, rline = ts.next("the root joint name")
    parse_joint(root, -1, rline)
    rest = ts.peek()
    if rest is not None:
        tok, line = rest
        if tok == "}":
            raise MocapError(path, f"line {line}: unbalanced braces: '}}' closes nothing")
        if tok == "ROOT":
            raise MocapError(path, f"line {line}: a second ROOT is not supported")
        raise MocapError(path, f"line {line}: unexpected {tok!r} after the root joint")
    end_offsets = np.full((len(names), 3), np.nan)
    for j, off in ends.items():
        end_offsets[j] = off
    return BvhSkeleton(tuple(names), np.asarray(parents, np.int64), np.asarray(offsets, np.float64),
                       tuple(channels), end_offsets)


def _split_sections(path: str, text: str) -> Tuple[str, int, List[str]]:
    """(HIERARCHY text, line number of MOTION, the lines after MOTION)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip().upper() == "MOTION":
            return "\n".join(lines[:i]), i + 1, lines[i + 1:]
    opens, closes = text.count("{"), text.count("}")
    if opens != closes:
        raise MocapError(path, f"unbalanced braces: {opens} '{{' and {closes} '}}', and no MOTION section")
    raise MocapError(path, "missing MOTION section")


def _motion_header(path: str, lines: List[str], first_line: int) -> Tuple[int, float, int]:
    """Reads ``Frames:`` and ``Frame Time:``; returns (frames, frame time, index of the first data line)."""
    values = {}
    i = 0
    for key, label in (("frames:", "Frames:"), ("frame time:", "Frame Time:")):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines):
            raise MocapError(path, f"line {first_line + i}: file ends before '{label}'")
        line = lines[i].strip()
        if not line.lower().startswith(key):
            raise MocapError(path, f"line {first_line + i}: expected '{label}', found {line[:40]!r}")
        raw = line[len(key):].strip()
        try:
            values[key] = float(raw)
        except ValueError:
            raise MocapError(path, f"line {first_line + i}: non-numeric '{label}' value {raw!r}") from None
        i += 1
    frames, frame_time = values["frames:"], values["frame time:"]
    if frames != int(frames) or frames < 1:
        raise MocapError(path, f"line {first_line}: Frames: must be a positive integer, found {frames}")
    if not frame_time > 0 or not math.isfinite(frame_time):
        raise MocapError(path, f"line {first_line + i - 1}: Frame Time must be positive, found {frame_time}")
    return int(frames), frame_time, i


def _row_error(path: str, skel: BvhSkeleton, rows: List[Tuple[int, str]]) -> MocapError:
    """Slow scan that finds the first bad row for a precise message (only called once parsing failed)."""
    labels = skel.channel_labels()
    for frame, (lineno, line) in enumerate(rows):
        toks = line.split()
        for k, tok in enumerate(toks[:len(labels)]):
            try:
                float(tok)
            except ValueError:
                return MocapError(path, f"line {lineno} (frame {frame}): non-numeric value {tok!r} in channel "
                                        f"{labels[k]}")
        if len(toks) != len(labels):
            return MocapError(path, f"line {lineno} (frame {frame}): {len(toks)} values, expected "
                                    f"{len(labels)} (one per channel); the row is truncated or corrupt"
                              if len(toks) < len(labels) else
                              f"line {lineno} (frame {frame}): {len(toks)} values, expected {len(labels)}")
    return MocapError(path, "motion rows could not be read")


def parse_bvh_text(text: str, path: str = "<string>") -> BvhFile:
    """Parses BVH text (see the module docstring). Raises :class:`MocapError` naming ``path``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    hierarchy, motion_line, after = _split_sections(path, text)
    skel = _parse_hierarchy(path, hierarchy)
    frames, frame_time, start = _motion_header(path, after, motion_line + 1)
    data = after[start:]
    first = motion_line + 1 + start  # line number of data[0]

    def rows() -> List[Tuple[int, str]]:
        # (line number, text) of the non-blank rows: built only to explain an error.
        return [(first + k, line) for k, line in enumerate(data) if line.strip()]

    num_channels = skel.num_channels
    if num_channels == 0:
        motion = np.zeros((len(rows()), 0))
    elif not "".join(data).strip():
        motion = np.zeros((0, num_channels))
    else:
        try:  # numpy's C reader; it skips blank lines
            motion = np.loadtxt(data, dtype=np.float64, ndmin=2, comments=None)
        except ValueError:
            raise _row_error(path, skel, rows()) from None
        if motion.shape[1] != num_channels:
            raise _row_error(path, skel, rows())
    if motion.shape[0] < frames:
        raise MocapError(path, f"truncated: 'Frames: {frames}' but only {motion.shape[0]} frame rows follow "
                               f"(file ends at line {motion_line + len(after)})")
    if motion.shape[0] > frames:
        raise MocapError(path, f"line {rows()[frames][0]}: {motion.shape[0] - frames} frame row(s) beyond "
                               f"'Frames: {frames}'")
    bad = ~np.isfinite(motion)
    if bad.any():
        frame, col = (int(v) for v in np.argwhere(bad)[0])
        raise MocapError(path, f"line {rows()[frame][0]} (frame {frame}): {motion[frame, col]} in channel "
                               f"{skel.channel_labels()[col]}")
    return BvhFile(path, skel, frame_time, motion)


def parse_bvh(path: str) -> BvhFile:
    """Reads and parses a ``.bvh`` file."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise MocapError(path, f"cannot read the file ({e.strerror or e})") from None
    return parse_bvh_text(text, str(path))


def forward_kinematics(skel: BvhSkeleton, motion: np.ndarray
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World joint origins, End Sites and rotations for every frame.

    Args:
      skel: the hierarchy.
      motion: (F, C) channel values (degrees / file length unit), columns as in the file.
    Returns:
      origins (F, J, 3), ends (F, J, 3) (NaN where a joint has no End Site), rotations (F, J, 3, 3).
    """
    motion = np.asarray(motion, dtype=np.float64)
    n = motion.shape[0]
    num_joints = len(skel.joint_names)
    origins = np.empty((n, num_joints, 3))
    rotations = np.empty((n, num_joints, 3, 3))
    ends = np.full((n, num_joints, 3), np.nan)
    col = 0
    # One pass over the hierarchy (parents come first), each step vectorised over all frames.
    for j, chans in enumerate(skel.channels):
        rot_cols, rot_axes = [], []
        trans = np.broadcast_to(skel.offsets[j], (n, 3)).copy()
        for c in chans:
            key = c.lower()
            if key in ROTATION_CHANNELS:
                rot_cols.append(col)
                rot_axes.append(ROTATION_CHANNELS[key])
            else:
                trans[:, POSITION_CHANNELS[key]] = motion[:, col]
            col += 1
        local = euler_to_matrix(motion[:, rot_cols], rot_axes)
        p = skel.parents[j]
        if p < 0:
            origins[:, j] = trans
            rotations[:, j] = local
        else:
            origins[:, j] = origins[:, p] + np.einsum("fik,fk->fi", rotations[:, p], trans)
            rotations[:, j] = rotations[:, p] @ local
        if np.isfinite(skel.end_offsets[j]).all():
            ends[:, j] = origins[:, j] + rotations[:, j] @ skel.end_offsets[j]
    return origins, ends, rotations


def read_bvh(path: str) -> SkeletonMotion:
    """Parses a BVH file and runs :func:`forward_kinematics` (lengths in the file's unit, Y up)."""
    parsed = parse_bvh(path)
    origins, ends, rotations = forward_kinematics(parsed.skeleton, parsed.motion)
    skel = parsed.skeleton
    return SkeletonMotion(path=str(path), source_format="bvh", joint_names=skel.joint_names,
                          parents=skel.parents, offsets=skel.offsets, origins=origins, ends=ends,
                          rotations=rotations, frame_time=parsed.frame_time)
