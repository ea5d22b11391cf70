"""BVH parser and forward kinematics against positions worked out by hand, and the parser's errors."""

import numpy as np
import pytest

from lcr_tf.poses.mocap import MocapError, bvh

# Two bones below a 6-channel root, rotations listed Z, Y, X (so R = Rz @ Ry @ Rx).
TWO_BONE = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Knee
  {
    OFFSET 0 -10 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 0 -20 0
    }
  }
}
MOTION
Frames: 4
Frame Time: 0.5
1 2 3 0 0 0 0 0 0
0 0 0 90 0 0 0 0 0
0 0 0 0 0 0 0 0 90
0 0 0 90 0 90 0 0 0
"""

# A root listing Z, X, Y; a non-root joint with 6 interleaved channels; a joint with one position channel.
MIXED = """HIERARCHY
ROOT Root
{
\tOFFSET 0 0 0
\tCHANNELS 3 Zrotation Xrotation Yrotation
\tJOINT Slider
\t{
\t\tOFFSET 0 5 0
\t\tCHANNELS 6 Yrotation Xposition Xrotation Yposition Zrotation Zposition
\t\tEnd Site
\t\t{
\t\t\tOFFSET 1 0 0
\t\t}
\t}
\tJOINT Partial
\t{
\t\tOFFSET 7 8 9
\t\tCHANNELS 1 Yposition
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 0 0
\t\t}
\t}
}
MOTION
Frames: 2
Frame Time: 0.0333333
0 0 0  0 0 0 0 0 0  0
90 90 0  90 1 0 2 0 3  4
"""


def test_two_bone_positions_by_hand():
    f = bvh.parse_bvh_text(TWO_BONE, "two.bvh")
    assert f.skeleton.joint_names == ("Hips", "Knee")
    assert f.frame_time == 0.5 and f.motion.shape == (4, 9)
    origins, ends, rot = bvh.forward_kinematics(f.skeleton, f.motion)
    # Frame 0: root translated by (1, 2, 3), no rotation.
    np.testing.assert_allclose(origins[0], [[1, 2, 3], [1, -8, 3]], atol=1e-12)
    np.testing.assert_allclose(ends[0, 1], [1, -28, 3], atol=1e-12)
    assert np.isnan(ends[0, 0]).all()  # the root has no End Site
    # Frame 1: root Zrotation 90 turns (0, -10, 0) into (10, 0, 0) and the End Site to (30, 0, 0).
    np.testing.assert_allclose(origins[1, 1], [10, 0, 0], atol=1e-12)
    np.testing.assert_allclose(ends[1, 1], [30, 0, 0], atol=1e-12)
    # Frame 2: knee Xrotation 90 turns (0, -20, 0) into (0, 0, -20) below the knee at (0, -10, 0).
    np.testing.assert_allclose(origins[2, 1], [0, -10, 0], atol=1e-12)
    np.testing.assert_allclose(ends[2, 1], [0, -10, -20], atol=1e-12)
    # Frame 3: root Z = 90 and X = 90, so R = Rz(90) @ Rx(90): (0, -10, 0) -> Rx -> (0, 0, -10) -> Rz ->
    # (0, 0, -10). The other order, Rx @ Rz, would give (10, 0, 0).
    np.testing.assert_allclose(origins[3, 1], [0, 0, -10], atol=1e-12)
    np.testing.assert_allclose(ends[3, 1], [0, 0, -30], atol=1e-12)
    np.testing.assert_allclose(rot[3, 0] @ rot[3, 0].T, np.eye(3), atol=1e-12)


def test_mixed_channel_orders_and_position_channels_by_hand():
    f = bvh.parse_bvh_text(MIXED, "mixed.bvh")
    assert f.skeleton.channels[1] == ("Yrotation", "Xposition", "Xrotation", "Yposition", "Zrotation",
                                      "Zposition")
    origins, ends, _ = bvh.forward_kinematics(f.skeleton, f.motion)
    # Frame 0: the position channels (all 0) replace Slider's OFFSET; Partial keeps x and z of its OFFSET.
    np.testing.assert_allclose(origins[0], [[0, 0, 0], [0, 0, 0], [7, 0, 9]], atol=1e-12)
    np.testing.assert_allclose(ends[0, 1], [1, 0, 0], atol=1e-12)
    # Frame 1: root R = Rz(90) @ Rx(90) (channels Z=90, X=90, Y=0).
    #   Slider translation (1, 2, 3): Rx(90) -> (1, -3, 2), Rz(90) -> (3, 1, 2).
    #   Slider rotation Ry(90) (its only non-zero angle): End Site (1, 0, 0) -> Ry -> (0, 0, -1)
    #   -> Rx -> (0, 1, 0) -> Rz -> (-1, 0, 0); so the End Site is at (2, 1, 2).
    #   Partial translation (7, 4, 9): Rx -> (7, -9, 4), Rz -> (9, 7, 4).
    np.testing.assert_allclose(origins[1, 1], [3, 1, 2], atol=1e-12)
    np.testing.assert_allclose(ends[1, 1], [2, 1, 2], atol=1e-12)
    np.testing.assert_allclose(origins[1, 2], [9, 7, 4], atol=1e-12)


def test_crlf_and_tabs_read_the_same(tmp_path):
    p = tmp_path / "crlf.bvh"
    p.write_bytes(TWO_BONE.replace("\n", "\r\n").replace("Frames: 4", "Frames:\t4").encode())
    a, b = bvh.parse_bvh(str(p)), bvh.parse_bvh_text(TWO_BONE)
    np.testing.assert_array_equal(a.motion, b.motion)
    assert a.skeleton.joint_names == b.skeleton.joint_names


def test_read_bvh_gives_a_motion(tmp_path):
    p = tmp_path / "two.bvh"
    p.write_text(TWO_BONE)
    m = bvh.read_bvh(str(p))
    assert m.source_format == "bvh" and m.num_frames == 4 and m.metres_per_unit is None
    assert m.joint_names == ("Hips", "Knee") and m.parents.tolist() == [-1, 0]
    np.testing.assert_allclose(m.offsets, [[0, 0, 0], [0, -10, 0]])
    np.testing.assert_allclose(m.ends[1, 1], [30, 0, 0], atol=1e-12)


def _error(text, tmp_path, name="bad.bvh"):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(MocapError) as info:
        bvh.parse_bvh(str(p))
    assert str(info.value).startswith(str(p) + ": ")  # the message names the file
    return info.value.reason


def test_truncated_file_fewer_rows_than_frames(tmp_path):
    text = TWO_BONE.rsplit("\n", 2)[0] + "\n"  # drop the last frame row
    reason = _error(text, tmp_path)
    assert "truncated" in reason and "Frames: 4" in reason and "3 frame rows" in reason


def test_short_row_names_line_and_frame(tmp_path):
    text = TWO_BONE.replace("0 0 0 0 0 0 0 0 90\n", "0 0 0 0 0 0 0 0\n")
    reason = _error(text, tmp_path)
    assert "line 21 (frame 2)" in reason and "8 values, expected 9" in reason and "truncated" in reason


def test_non_numeric_value_names_line_frame_and_channel(tmp_path):
    text = TWO_BONE.replace("0 0 0 90 0 0 0 0 0\n", "0 0 0 90 abc 0 0 0 0\n")
    reason = _error(text, tmp_path)
    assert "line 20 (frame 1)" in reason and "'abc'" in reason and "Hips.Yrotation" in reason


def test_nan_value_names_line_frame_and_channel(tmp_path):
    text = TWO_BONE.replace("0 0 0 0 0 0 0 0 90\n", "0 0 0 0 0 0 0 nan 90\n")
    reason = _error(text, tmp_path)
    assert "line 21 (frame 2)" in reason and "nan" in reason and "Knee.Yrotation" in reason


def test_unbalanced_braces(tmp_path):
    missing_close = TWO_BONE.replace("    }\n  }\n}", "    }\n  }\n", 1)
    assert "unbalanced braces" in _error(missing_close, tmp_path, "a.bvh")
    extra_close = TWO_BONE.replace("  }\n}\nMOTION", "  }\n}\n}\nMOTION")
    reason = _error(extra_close, tmp_path, "b.bvh")
    assert "unbalanced braces" in reason and "line 16" in reason


def test_missing_motion_section(tmp_path):
    assert _error(TWO_BONE.split("MOTION")[0], tmp_path) == "missing MOTION section"


def test_unknown_channel_name(tmp_path):
    text = TWO_BONE.replace("CHANNELS 3 Zrotation Yrotation Xrotation", "CHANNELS 3 Zrotation Wrotation Xrotation")
    reason = _error(text, tmp_path)
    assert "line 9" in reason and "unknown channel name 'Wrotation'" in reason and "'Knee'" in reason


def test_other_malformed_headers(tmp_path):
    assert "non-numeric OFFSET" in _error(TWO_BONE.replace("OFFSET 0 -10 0", "OFFSET 0 x 0"), tmp_path, "a.bvh")
    assert "beyond 'Frames: 4'" in _error(TWO_BONE + "0 0 0 0 0 0 0 0 0\n", tmp_path, "c.bvh")
    assert "Frame Time" in _error(TWO_BONE.replace("Frame Time: 0.5", "Frame Time: 0"), tmp_path, "d.bvh")
    assert "Frames:" in _error(TWO_BONE.replace("Frames: 4", "Frames: four"), tmp_path, "e.bvh")
    assert "used twice" in _error(TWO_BONE.replace("JOINT Knee", "JOINT Hips"), tmp_path, "f.bvh")
    with pytest.raises(MocapError, match="cannot read the file"):
        bvh.parse_bvh(str(tmp_path / "absent.bvh"))
