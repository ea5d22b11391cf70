"""ASF/AMC parser and forward kinematics against hand-computed positions, units, errors, and the real
CMU trial 01_01 read from its ASF/AMC and from its BVH conversion."""

import os

import numpy as np
import pytest

from lcr_tf.poses import mocap
from lcr_tf.poses.mocap import MocapError, asf_amc, rigs

# 'thigh' has a non-trivial axis (90 deg about z) and one dof, rx; 'shin' two dofs listed rz then ry.
ASF = """# test skeleton
:version 1.10
:name test
:units
  mass 1.0
  length 0.45
  angle deg
:documentation
  lines here are ignored
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name thigh
     direction 1 0 0
     length 9
     axis 0 0 90  XYZ
    dof rx
    limits (-180.0 180.0)
  end
  begin
     id 2
     name shin
     direction 0 -1 0
     length 4.5
     axis 0 0 0 XYZ
    dof rz ry
    limits (-180.0 180.0)
           (-180.0 180.0)
  end
:hierarchy
  begin
    root thigh
    thigh shin
  end
"""

AMC = """#!OML:ASF test.asf
:FULLY-SPECIFIED
:DEGREES
1
root 1 2 3 0 0 0
thigh 0
shin 0 0
2
root 0 0 0 0 0 0
thigh 90
shin 90 90
3
root 0 0 0 0 0 90
thigh 0
shin 0 0
"""


def _write(tmp_path, asf=ASF, amc=AMC, name="test"):
    (tmp_path / f"{name}.asf").write_text(asf)
    (tmp_path / f"{name}_01.amc").write_text(amc)
    return str(tmp_path / f"{name}.asf"), str(tmp_path / f"{name}_01.amc")


def test_parse_asf_fields():
    s = asf_amc.parse_asf_text(ASF, "t.asf")
    assert s.bone_names == ("root", "thigh", "shin")
    assert s.parents.tolist() == [-1, 0, 1]
    assert s.dofs == (("tx", "ty", "tz", "rx", "ry", "rz"), ("rx",), ("rz", "ry"))
    np.testing.assert_allclose(s.axis_angles[1], [0, 0, np.pi / 2])
    assert s.length_multiplier == 0.45 and s.angle_unit == "deg" and s.length_unit == "cmu"
    np.testing.assert_allclose(s.metres_per_unit, 0.0254 / 0.45)


def test_fk_by_hand(tmp_path):
    asf_path, amc_path = _write(tmp_path)
    m = asf_amc.read_asf_amc(asf_path, amc_path)
    assert m.joint_names == ("root", "thigh", "shin") and m.num_frames == 3 and m.source_format == "amc"
    # Frame 0: rest pose translated by the root's (1, 2, 3).
    np.testing.assert_allclose(m.origins[0], [[1, 2, 3], [1, 2, 3], [10, 2, 3]], atol=1e-12)
    np.testing.assert_allclose(m.ends[0, 1:], [[10, 2, 3], [10, -2.5, 3]], atol=1e-12)
    # Frame 1: the thigh's rx = 90 is about its axis frame's x, which C = Rz(90) turns into the world y:
    # R_thigh = C Rx(90) C^-1 = Ry(90), taking the thigh (9, 0, 0) to (0, 0, -9).
    # (Ignoring C would leave it at (9, 0, 0); using C^-1 Rx C would give (0, 0, 9).)
    # Shin: M = Ry(90) @ Rz(90) (rz first): (0, -4.5, 0) -> Rz -> (4.5, 0, 0) -> Ry -> (0, 0, -4.5),
    # then R_thigh = Ry(90): (-4.5, 0, 0). (M = Rz @ Ry would give (0, 0, -4.5).)
    np.testing.assert_allclose(m.ends[1, 1], [0, 0, -9], atol=1e-12)
    np.testing.assert_allclose(m.origins[1, 2], [0, 0, -9], atol=1e-12)
    np.testing.assert_allclose(m.ends[1, 2], [-4.5, 0, -9], atol=1e-12)
    # Frame 2: root RZ = 90 turns the whole rest pose: thigh end (9, 0, 0) -> (0, 9, 0);
    # shin vector (0, -4.5, 0) -> (4.5, 0, 0).
    np.testing.assert_allclose(m.ends[2, 1], [0, 9, 0], atol=1e-12)
    np.testing.assert_allclose(m.ends[2, 2], [4.5, 9, 0], atol=1e-12)
    np.testing.assert_allclose(m.offsets, [[0, 0, 0], [0, 0, 0], [9, 0, 0]])


def test_irregular_amc_layout_reads_the_same():
    """Bones in another order in one frame, comments and blank lines: the line-by-line reader must give
    the values the one-pass reader gives for the regular file."""
    asf = asf_amc.parse_asf_text(ASF)
    regular = asf_amc.parse_amc_text(AMC, asf)
    assert asf_amc._amc_rows_fast(AMC, asf) is not None  # the regular file takes the one-pass reader
    odd = AMC.replace("thigh 90\nshin 90 90\n", "shin 90 90\n\n# a comment\nthigh 90\n")
    assert asf_amc._amc_rows_fast(odd, asf) is None
    irregular = asf_amc.parse_amc_text(odd, asf)
    np.testing.assert_array_equal(regular.frame_numbers, [1, 2, 3])
    np.testing.assert_array_equal(irregular.frame_numbers, regular.frame_numbers)
    for bone in ("root", "thigh", "shin"):
        np.testing.assert_array_equal(irregular.values[bone], regular.values[bone])
    np.testing.assert_allclose(regular.values["shin"][1], [np.pi / 2, np.pi / 2])  # degrees -> radians
    np.testing.assert_allclose(regular.values["root"][0], [1, 2, 3, 0, 0, 0])  # lengths untouched


def test_radians_and_root_presets(tmp_path):
    asf = ASF.replace("angle deg", "angle rad").replace("axis 0 0 90  XYZ", f"axis 0 0 {np.pi / 2!r} XYZ")
    half_pi = repr(np.pi / 2)
    amc = (AMC.replace(":DEGREES\n", "").replace("thigh 90", f"thigh {half_pi}")
           .replace("shin 90 90", f"shin {half_pi} {half_pi}")
           .replace("root 0 0 0 0 0 90", f"root 0 0 0 0 0 {half_pi}"))
    m = asf_amc.read_asf_amc(*_write(tmp_path, asf, amc))
    np.testing.assert_allclose(m.ends[1, 2], [-4.5, 0, -9], atol=1e-12)
    np.testing.assert_allclose(m.ends[2, 2], [4.5, 9, 0], atol=1e-12)
    # Root presets: position is added to the AMC translation, orientation composes before the motion.
    asf = ASF.replace("position 0 0 0", "position 10 0 0").replace("orientation 0 0 0", "orientation 0 0 90")
    m = asf_amc.read_asf_amc(*_write(tmp_path, asf, AMC, "pre"))
    np.testing.assert_allclose(m.origins[0, 0], [11, 2, 3], atol=1e-12)
    np.testing.assert_allclose(m.ends[0, 1], [11, 11, 3], atol=1e-12)  # (9, 0, 0) turned by Rz(90)


def test_units_cmu_and_others():
    assert asf_amc.parse_asf_text(ASF.replace("length 0.45", "length 1.0")).length_unit == "inch"
    s = asf_amc.parse_asf_text(ASF.replace("length 0.45", "length 2.54"))
    assert s.length_unit == "inch/2.54"
    np.testing.assert_allclose(s.metres_per_unit, 0.01)  # 2.54: the file is in centimetres
    # CMU: a 9-unit bone is 9 / 0.45 = 20 inches = 0.508 m.
    np.testing.assert_allclose(9 * asf_amc.parse_asf_text(ASF).metres_per_unit, 0.508)


def _asf_error(text):
    with pytest.raises(MocapError) as info:
        asf_amc.parse_asf_text(text, "bad.asf")
    assert str(info.value).startswith("bad.asf: ")
    return info.value.reason


def _amc_error(text, asf=ASF):
    with pytest.raises(MocapError) as info:
        asf_amc.parse_amc_text(text, asf_amc.parse_asf_text(asf, "t.asf"), "bad.amc")
    assert str(info.value).startswith("bad.amc: ")
    return info.value.reason


def test_asf_errors():
    assert "missing :hierarchy" in _asf_error(ASF.split(":hierarchy")[0])
    assert "unknown bone 'knee'" in _asf_error(ASF.replace("thigh shin\n", "thigh knee\n"))
    assert "line 19" in _asf_error(ASF.replace("direction 1 0 0", "direction 1 x 0"))
    assert "unsupported dof 'tx'" in _asf_error(ASF.replace("dof rx", "dof tx"))
    assert "not reachable" in _asf_error(ASF.replace("    thigh shin\n", ""))
    assert "line 24: 'begin' inside bone 'thigh'" in _asf_error(ASF.replace("  end\n  begin\n     id 2",
                                                                            "  begin\n     id 2"))
    assert "line 34: bone 'shin' has no 'end'" in _asf_error(ASF.replace("  end\n:hierarchy", ":hierarchy"))


def test_amc_short_last_frame_is_truncated():
    reason = _amc_error(AMC.rsplit("shin 0 0\n", 1)[0])
    assert "truncated frame: frame 2 (line 12)" in reason and "'shin'" in reason


def test_amc_unknown_bone_and_dof_count():
    reason = _amc_error(AMC.replace("thigh 90", "femur 90"))
    assert "line 10 (frame 1)" in reason and "unknown bone 'femur'" in reason
    reason = _amc_error(AMC.replace("shin 90 90", "shin 90"))
    assert "line 11 (frame 1)" in reason and "'shin' has 1 values, its dof count is 2" in reason


def test_amc_bad_numbers():
    assert "non-numeric value 'x' for bone 'thigh'" in _amc_error(AMC.replace("thigh 90", "thigh x"))
    reason = _amc_error(AMC.replace("thigh 90", "thigh nan"))
    assert "line 10 (frame 1)" in reason and "nan" in reason and "'thigh'" in reason
    assert "no frames" in _amc_error(":FULLY-SPECIFIED\n:DEGREES\n")


def test_missing_asf(tmp_path):
    (tmp_path / "77_01.amc").write_text(AMC)
    with pytest.raises(MocapError, match="no skeleton file") as info:
        mocap.read_trial(str(tmp_path / "77_01.amc"))
    assert info.value.path.endswith("77_01.amc")
    with pytest.raises(MocapError, match="no skeleton file"):
        mocap.read_trial(str(tmp_path / "77_01.amc"), asf_path=str(tmp_path / "nope.asf"))
    assert mocap.find_asf(str(tmp_path / "77_01.amc"), asf_path=_write(tmp_path)[0]).endswith("test.asf")
    (tmp_path / "77.asf").write_text(ASF.replace("length 9", "length nine"))
    with pytest.raises(MocapError) as info:
        mocap.load_motion(str(tmp_path / "77_01.amc"))
    assert info.value.path.endswith("77_01.amc")
    assert f"skeleton file {tmp_path / '77.asf'}: line 20: non-numeric length" in info.value.reason


# ---- Real data -------------------------------------------------------------------------------------

LEGS_AND_ARMS = ["left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                 "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"]
UPPER = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
         "head", "head_top", "neck"]


@pytest.mark.shared_data
def test_cmu_01_01_asf_amc_matches_its_bvh(mocap_dir):
    """01_01 as ASF/AMC and as BVH (CMU 31-joint conversion, same CMU length unit).

    Frame alignment: the BVH has 2752 frames, the AMC 2751; the BVH's frame 0 is an added rest pose
    (zero rotations at the AMC's first root position), so AMC frame k is BVH frame k + 1.
    Lower body: identical up to the text rounding of the BVH (5 decimals): < 1e-4 m.
    Upper body: the conversion wrote a zero OFFSET for the joints below 'Spine1' (the thorax), dropping
    the ASF 'thorax' bone (2.065 units = 11.7 cm), so every upper-body point of the BVH is that bone's
    vector away from the ASF's; adding the ASF thorax vector back makes them agree to < 1e-4 m. Nothing
    else differs: no global rotation or scale.
    """
    amc, _ = mocap.load_motion(os.path.join(mocap_dir, "asf_amc", "01_01.amc"))
    bv, _ = mocap.load_motion(os.path.join(mocap_dir, "bvh_cmu31", "01_01.bvh"))
    assert (amc.num_frames, bv.num_frames) == (2751, 2752)
    scale = rigs.LENGTH_UNITS["cmu"]
    a = rigs.CMU_ASF.points(amc, LEGS_AND_ARMS[:6]) * scale
    b = rigs.CMU_BVH_A.points(bv, LEGS_AND_ARMS[:6]) * scale
    assert np.abs(a - b[1:]).max() < 1e-4
    assert np.abs(a - b[:-1]).max() > 0.05  # the other alignment is clearly wrong
    thorax = amc.joint_index("thorax")
    shift = (amc.ends[:, thorax] - amc.origins[:, thorax])[:, None] * scale
    a_up = rigs.CMU_ASF.points(amc, UPPER) * scale
    b_up = rigs.CMU_BVH_A.points(bv, UPPER)[1:] * scale
    np.testing.assert_allclose(np.linalg.norm(a_up - b_up, axis=-1), 2.06488 * scale, atol=2e-4)
    assert np.abs(a_up - (b_up + shift)).max() < 1e-4


@pytest.mark.shared_data
def test_cmu_units_and_bone_lengths_on_real_asf(mocap_dir):
    trial = mocap.read_trial(os.path.join(mocap_dir, "asf_amc", "01_01.amc"))
    assert (trial.rig, trial.length_unit, trial.source_format) == ("cmu_asf", "cmu", "amc")
    assert trial.frame_rate == 120.0
    assert trial.skeleton_file.endswith("01.asf")
    p = trial.poses3d.astype(np.float64)
    # 01.asf: lfemur length 7.1578 units -> 7.1578 / 0.45 * 0.0254 m; ltibia 7.49137.
    np.testing.assert_allclose(np.linalg.norm(p[:, 5] - p[:, 3], axis=-1), 7.1578 / 0.45 * 0.0254, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(p[:, 3] - p[:, 1], axis=-1), 7.49137 / 0.45 * 0.0254, atol=1e-5)


@pytest.mark.shared_data
def test_amc_without_its_asf_reads_with_a_stand_in(mocap_dir):
    path = os.path.join(mocap_dir, "asf_amc", "02_01.amc")
    with pytest.raises(MocapError, match="no skeleton file"):
        mocap.read_trial(path)
    trial = mocap.read_trial(path, asf_path=os.path.join(mocap_dir, "asf_amc", "12.asf"))
    assert trial.num_frames == 343 and trial.skeleton_file.endswith("12.asf")
    assert np.isfinite(trial.poses3d).all()
