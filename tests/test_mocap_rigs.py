"""Rig detection, mapping to skeletons and BVH length units, on tiny hand-written files in every naming
(all built on the same body, so they must give the same poses) and on the real files of each rig."""

import os

import numpy as np
import pytest

from lcr_tf.contracts.skeleton import get_skeleton
from lcr_tf.poses import mocap
from lcr_tf.poses.mocap import MocapError, bvh, rigs

# One body in centimetres, Y up, facing +z (its left is +x), hips at the origin. Hand-computed points:
BODY_CM = {
    "right_ankle": (-10, -90, 0), "left_ankle": (10, -90, 0), "right_knee": (-10, -45, 0),
    "left_knee": (10, -45, 0), "right_hip": (-10, 0, 0), "left_hip": (10, 0, 0),
    "right_wrist": (-73, 45, 0), "left_wrist": (73, 45, 0), "right_elbow": (-48, 45, 0),
    "left_elbow": (48, 45, 0), "right_shoulder": (-18, 45, 0), "left_shoulder": (18, 45, 0),
    # The centre of the head: half-way between the head joint (0, 60, 0) and the head top (0, 80, 0); for
    # the eye rigs, eye height (10 above the head joint) along the head's up axis.
    "head": (0, 70, 0),
}
LCR13 = ["right_ankle", "left_ankle", "right_knee", "left_knee", "right_hip", "left_hip", "right_wrist",
         "left_wrist", "right_elbow", "left_elbow", "right_shoulder", "left_shoulder", "head"]
CENTRE_CM = np.array([0.0, 22.5, 0.0])  # mean of the hips and shoulders


def expected_lcr13(frame: int) -> np.ndarray:
    """Metres, camera axes, centred. Frame 1 is the body turned 90 deg about the vertical:
    (x, y, z) -> (z, y, -x) in MoCap axes."""
    p = np.array([BODY_CM[n] for n in LCR13], float) - CENTRE_CM
    if frame == 1:
        p = np.stack([p[:, 2], p[:, 1], -p[:, 0]], -1)
    return p * [0.01, -0.01, -0.01]


NAMINGS = {
    "cmu_bvh_a": dict(root="Hips", thigh="{}UpLeg", shin="{}Leg", foot="{}Foot", neck="Neck", head="Head",
                      upper="{}Arm", fore="{}ForeArm", hand="{}Hand", sides=("Left", "Right"), eyes=None),
    "cmu_bvh_b": dict(root="Hips", thigh="{}Hip", shin="{}Knee", foot="{}Ankle", neck="lowerneck", head="Head",
                      upper="{}Shoulder", fore="{}Elbow", hand="{}Wrist", sides=("Left", "Right"), eyes=None),
    "daz": dict(root="hip", thigh="{}Thigh", shin="{}Shin", foot="{}Foot", neck="neck", head="head",
                upper="{}Shldr", fore="{}ForeArm", hand="{}Hand", sides=("l", "r"), eyes=("leftEye", "rightEye")),
    "iclone_cc": dict(root="CC_Base_Hip", thigh="CC_Base_{}_Thigh", shin="CC_Base_{}_Calf",
                      foot="CC_Base_{}_Foot", neck="CC_Base_NeckTwist01", head="CC_Base_Head",
                      upper="CC_Base_{}_Upperarm", fore="CC_Base_{}_Forearm", hand="CC_Base_{}_Hand",
                      sides=("L", "R"), eyes=("CC_Base_L_Eye", "CC_Base_R_Eye")),
}


def _joint(name, offset, children=(), end=None):
    return (name, offset, list(children), end)


def humanoid_bvh(rig: str, scale: float = 1.0, channel_order="Zrotation Yrotation Xrotation") -> str:
    """The body of BODY_CM in ``rig``'s naming, lengths multiplied by ``scale``; frame 0 at rest, frame 1
    with the root turned 90 deg about y."""
    n = NAMINGS[rig]
    parts = []
    for s, sign in zip(n["sides"], (1, -1)):
        parts.append(_joint(n["thigh"].format(s), (10 * sign, 0, 0), [
            _joint(n["shin"].format(s), (0, -45, 0), [
                _joint(n["foot"].format(s), (0, -45, 0), end=(0, -5, 10))])]))
    if n["eyes"]:
        head = _joint(n["head"], (0, 10, 0), [_joint(n["eyes"][0], (3, 10, 8), end=(0, 0, 1)),
                                              _joint(n["eyes"][1], (-3, 10, 8), end=(0, 0, 1))])
    else:
        head = _joint(n["head"], (0, 10, 0), end=(0, 20, 0))
    arms = [_joint(n["upper"].format(s), (18 * sign, -5, 0), [
        _joint(n["fore"].format(s), (30 * sign, 0, 0), [
            _joint(n["hand"].format(s), (25 * sign, 0, 0), end=(10 * sign, 0, 0))])])
        for s, sign in zip(n["sides"], (1, -1))]
    parts.append(_joint(n["neck"], (0, 50, 0), [head] + arms))
    lines, count = ["HIERARCHY"], [0]

    def emit(j, depth, root=False):
        name, off, children, end = j
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if root else 'JOINT'} {name}")
        lines.append(pad + "{")
        lines.append(pad + "  OFFSET " + " ".join(f"{v * scale:.6f}" for v in off))
        if root:
            lines.append(pad + "  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation")
            count[0] += 6
        else:
            lines.append(pad + "  CHANNELS 3 " + channel_order)
            count[0] += 3
        for c in children:
            emit(c, depth + 1)
        if end is not None:
            lines.extend([pad + "  End Site", pad + "  {",
                          pad + "    OFFSET " + " ".join(f"{v * scale:.6f}" for v in end), pad + "  }"])
        lines.append(pad + "}")

    emit(_joint(n["root"], (0, 0, 0), parts), 0, root=True)
    rest = ["0"] * count[0]
    turned = list(rest)
    turned[4] = "90"  # the root's Yrotation
    lines += ["MOTION", "Frames: 2", "Frame Time: 0.008333", " ".join(rest), " ".join(turned)]
    return "\n".join(lines) + "\n"


def with_channel(text: str, joint: str, channel: str, values) -> str:
    """``text`` (one of humanoid_bvh's files) with ``joint``'s ``channel`` set to ``values`` (one per frame)."""
    parsed = bvh.parse_bvh_text(text)
    col = parsed.skeleton.channel_labels().index(f"{joint}.{channel}")
    motion = parsed.motion.copy()
    motion[:, col] = values
    head = text.split("MOTION")[0]
    body = "\n".join(" ".join(f"{v:g}" for v in row) for row in motion)
    return f"{head}MOTION\nFrames: {len(motion)}\nFrame Time: {parsed.frame_time}\n{body}\n"


HUMANOID_ASF = """:version 1.10
:name humanoid
:units
  mass 1.0
  length 2.54
  angle deg
:root
  order TX TY TZ RX RY RZ
  axis XYZ
  position 0 0 0
  orientation 0 0 0
:bonedata
{bones}
:hierarchy
  begin
    root lhipjoint rhipjoint lowerback
    lhipjoint lfemur
    lfemur ltibia
    ltibia lfoot
    rhipjoint rfemur
    rfemur rtibia
    rtibia rfoot
    lowerback lowerneck lclavicle rclavicle
    lowerneck head
    lclavicle lhumerus
    lhumerus lradius
    lradius lwrist
    rclavicle rhumerus
    rhumerus rradius
    rradius rwrist
  end
"""


def humanoid_asf_amc(tmp_path):
    """The same body as an ASF (length 2.54: centimetres) + AMC, with CMU bone names."""
    bones = {"lhipjoint": ((1, 0, 0), 10), "lfemur": ((0, -1, 0), 45), "ltibia": ((0, -1, 0), 45),
             "lfoot": ((0, -5, 10), 125 ** 0.5), "lowerback": ((0, 1, 0), 50), "lowerneck": ((0, 1, 0), 10),
             "head": ((0, 1, 0), 20), "lclavicle": ((18, -5, 0), 349 ** 0.5), "lhumerus": ((1, 0, 0), 30),
             "lradius": ((1, 0, 0), 25), "lwrist": ((1, 0, 0), 10)}
    for b in list(bones):
        if b.startswith("l") and b not in ("lowerback", "lowerneck"):
            (x, y, z), length = bones[b]
            bones["r" + b[1:]] = ((-x, y, z), length)
    blocks = []
    for i, (b, (d, length)) in enumerate(bones.items(), 1):
        blocks.append(f"  begin\n    id {i}\n    name {b}\n    direction {d[0]} {d[1]} {d[2]}\n"
                      f"    length {length!r}\n    axis 0 0 0 XYZ\n    dof rx ry rz\n  end")
    (tmp_path / "99.asf").write_text(HUMANOID_ASF.replace("{bones}", "\n".join(blocks)))
    frames = []
    for k, ry in enumerate((0, 90), 1):
        frames.append(f"{k}\nroot 0 0 0 0 {ry} 0\n" + "".join(f"{b} 0 0 0\n" for b in bones))
    (tmp_path / "99_01.amc").write_text(":FULLY-SPECIFIED\n:DEGREES\n" + "".join(frames))
    return str(tmp_path / "99_01.amc")


@pytest.mark.parametrize("rig", sorted(NAMINGS))
def test_each_bvh_naming_is_detected_and_mapped(rig, tmp_path):
    path = tmp_path / f"{rig}.bvh"
    path.write_text(humanoid_bvh(rig))
    trial = mocap.read_trial(str(path))
    assert (trial.rig, trial.length_unit, trial.source_format) == (rig, "cm", "bvh")
    assert trial.poses3d.dtype == np.float32 and trial.poses3d.shape == (2, 13, 3)
    np.testing.assert_allclose(trial.poses3d[0], expected_lcr13(0), atol=1e-6)
    np.testing.assert_allclose(trial.poses3d[1], expected_lcr13(1), atol=1e-6)
    np.testing.assert_allclose(trial.frame_rate, 1 / 0.008333)


def test_asf_naming_is_detected_and_mapped(tmp_path):
    trial = mocap.read_trial(humanoid_asf_amc(tmp_path))
    assert (trial.rig, trial.length_unit, trial.source_format) == ("cmu_asf", "inch/2.54", "amc")
    np.testing.assert_allclose(trial.poses3d[0], expected_lcr13(0), atol=1e-6)
    np.testing.assert_allclose(trial.poses3d[1], expected_lcr13(1), atol=1e-6)


def test_channel_order_of_rest_pose_does_not_matter(tmp_path):
    path = tmp_path / "zxy.bvh"
    path.write_text(humanoid_bvh("daz", channel_order="Zrotation Xrotation Yrotation"))
    np.testing.assert_allclose(mocap.read_trial(str(path)).poses3d[1], expected_lcr13(1), atol=1e-6)


@pytest.mark.parametrize("rig", sorted(NAMINGS))
def test_head_centre_follows_a_nodding_head(rig, tmp_path):
    # Head joint turned 90 deg about x. End Site rigs: the top (0, 20, 0) above the head joint (0, 60, 0)
    # goes to (0, 0, 20), so the centre is (0, 60, 10). Eye rigs: the up axis (0, 1, 0) goes to (0, 0, 1)
    # and the eyes' mid-point (0, 10, 8) to (0, -8, 10), at height 10 on that axis: (0, 60, 10) too.
    n = NAMINGS[rig]
    path = tmp_path / "nod.bvh"
    path.write_text(with_channel(humanoid_bvh(rig), n["head"], "Xrotation", [90, 90]))
    head = mocap.read_trial(str(path)).poses3d[0, 12]
    np.testing.assert_allclose(head, (np.array([0, 60, 10]) - CENTRE_CM) * [0.01, -0.01, -0.01], atol=1e-6)


def test_h36m17_and_mupots17_from_cmu_rigs(tmp_path):
    path = tmp_path / "a.bvh"
    path.write_text(humanoid_bvh("cmu_bvh_a"))
    h36m = mocap.read_trial(str(path), skeleton="h36m17").poses3d[0]
    by_hand_cm = {"pelvis": (0, 0, 0), "spine": (0, 25, 0), "thorax": (0, 50, 0), "neck_nose": (0, 60, 0),
                  "head_top": (0, 80, 0), "left_wrist": (73, 45, 0)}
    h = get_skeleton("h36m17")
    for name, p in by_hand_cm.items():
        expected = (np.array(p) - CENTRE_CM) * [0.01, -0.01, -0.01]
        np.testing.assert_allclose(h36m[h.index(name)], expected, atol=1e-6)
    mupots = mocap.read_trial(str(path), skeleton="mupots17").poses3d[0]
    m = get_skeleton("mupots17")
    np.testing.assert_allclose(mupots[m.index("neck")], (np.array([0, 50, 0]) - CENTRE_CM) * [0.01, -0.01, -0.01],
                               atol=1e-6)
    np.testing.assert_allclose(mupots[m.index("head")], h36m[h.index("head_top")] + [0, 0.1, 0], atol=1e-6)


def test_missing_points_are_named(tmp_path):
    path = tmp_path / "daz.bvh"
    path.write_text(humanoid_bvh("daz"))
    with pytest.raises(MocapError, match=r"rig 'daz' cannot give joint\(s\) head_top"):
        mocap.read_trial(str(path), skeleton="h36m17")
    with pytest.raises(MocapError, match="nose, left_eye, right_eye, left_ear, right_ear"):
        mocap.read_trial(str(path), skeleton="coco17")


def test_unknown_rig_is_reported(tmp_path):
    text = humanoid_bvh("cmu_bvh_a").replace("LeftUpLeg", "ThighL").replace("RightUpLeg", "ThighR")
    path = tmp_path / "odd.bvh"
    path.write_text(text)
    with pytest.raises(MocapError) as info:
        mocap.read_trial(str(path))
    assert "unknown rig: joints LeftUpLeg, RightUpLeg not found" in info.value.reason
    assert "'cmu_bvh_a'" in info.value.reason
    with pytest.raises(MocapError, match="unknown rig"):
        rigs.detect_rig(["root", "a", "b"])


@pytest.mark.parametrize("unit,scale", [("m", 0.01), ("mm", 10.0), ("inch", 1 / 2.54), ("cmu", 0.45 / 2.54),
                                        ("cm", 1.0)])
def test_bvh_length_unit_is_inferred(unit, scale, tmp_path):
    path = tmp_path / f"{unit}.bvh"
    path.write_text(humanoid_bvh("cmu_bvh_b", scale=scale))
    trial = mocap.read_trial(str(path))
    assert trial.length_unit == unit
    np.testing.assert_allclose(trial.poses3d[0], expected_lcr13(0), atol=1e-5)
    motion, _ = mocap.load_motion(str(path))
    assert rigs.infer_length_unit(motion, rigs.CMU_BVH_B)[2] == pytest.approx(0.9)  # 45 + 45 cm


def test_length_unit_override_and_implausible_size(tmp_path):
    path = tmp_path / "small.bvh"
    path.write_text(humanoid_bvh("cmu_bvh_a", scale=1 / 30))  # a 3-unit leg fits no unit
    with pytest.raises(MocapError, match="cannot infer the length unit: the leg .* is 3 file units"):
        mocap.read_trial(str(path))
    trial = mocap.read_trial(str(path), length_unit="m")  # read as metres: 30 times smaller than BODY_CM
    assert trial.length_unit == "m"
    np.testing.assert_allclose(trial.poses3d[0], expected_lcr13(0) * 100 / 30, atol=1e-5)
    with pytest.raises(MocapError, match="unknown length unit 'furlong'"):
        mocap.read_trial(str(path), length_unit="furlong")


def test_rig_registry_is_consistent():
    for rig in rigs.RIGS.values():
        for name in LCR13:
            assert name in rig.recipes, (rig.name, name)
    # Every pair of rigs is told apart by its joints.
    for a in rigs.RIGS.values():
        for b in rigs.RIGS.values():
            if a is not b:
                assert not a.identifying_joints <= b.identifying_joints


# ---- Real data -------------------------------------------------------------------------------------

REAL = {"cmu_asf": "asf_amc/01_01.amc", "cmu_bvh_a": "bvh_cmu31/02_01.bvh", "cmu_bvh_b": "bvh_cmu31/35_01.bvh",
        "daz": "bvh_daz_acrnn/martial_04.bvh", "iclone_cc": "bvh_iclone_ccrig/002_04.bvh"}
UNITS = {"cmu_asf": "cmu", "cmu_bvh_a": "cmu", "cmu_bvh_b": "cmu", "daz": "cm", "iclone_cc": "cm"}


@pytest.mark.shared_data
@pytest.mark.parametrize("rig", sorted(REAL))
def test_real_files_of_each_rig(rig, mocap_dir):
    trial = mocap.read_trial(os.path.join(mocap_dir, REAL[rig]))
    assert trial.rig == rig and trial.length_unit == UNITS[rig]
    p = trial.poses3d.astype(np.float64)
    assert np.isfinite(p).all()
    for hip, knee in ((4, 2), (5, 3)):
        thigh = np.linalg.norm(p[:, hip] - p[:, knee], axis=-1)
        assert 0.35 <= thigh.min() and thigh.max() <= 0.55  # rigid bones, adult thighs
    # Head above the hips (more negative y) on average; the body centre is the origin.
    assert p[:, 12, 1].mean() < p[:, 4:6, 1].mean() - 0.4
    np.testing.assert_allclose(p[:, [4, 5, 10, 11]].mean(axis=1), 0, atol=1e-6)


@pytest.mark.shared_data
def test_real_walk_is_upright_and_left_is_left(mocap_dir):
    path = os.path.join(mocap_dir, "bvh_cmu31", "07_01.bvh")
    p = mocap.read_trial(path).poses3d.astype(np.float64)
    assert (p[:, 12, 1] < p[:, 4:6, 1].mean(axis=1)).all()  # head above the hips in every walking frame
    assert (p[:, :2, 1] > p[:, 2:4, 1]).mean() > 0.95  # ankles below knees
    # Handedness: for a real person in right-handed axes, forward x up points to their RIGHT, so
    # (left_hip - right_hip) . (forward x up) < 0. Forward is the left foot's direction (ankle to toe tip)
    # taken from the file and turned into camera axes; a mirrored mapping or swapped sides would flip it.
    motion, _ = mocap.load_motion(path)
    forward = (motion.ends[:, motion.joint_index("LeftToe")]
               - motion.origins[:, motion.joint_index("LeftAnkle")]) * [1, -1, -1]
    up = p[:, 12] - p[:, 4:6].mean(axis=1)
    triple = np.einsum("fi,fi->f", p[:, 5] - p[:, 4], np.cross(forward, up))
    assert (triple < 0).mean() > 0.95
