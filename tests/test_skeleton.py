import numpy as np
import pytest

from lcr_tf.contracts import skeleton as sk


def test_lcr13_order_is_the_public_release_order():
    assert sk.LCR13.joint_names == (
        "right_ankle", "left_ankle", "right_knee", "left_knee", "right_hip", "left_hip", "right_wrist",
        "left_wrist", "right_elbow", "left_elbow", "right_shoulder", "left_shoulder", "head")
    assert list(sk.LCR13.lower_body) == [0, 1, 2, 3]
    assert list(sk.LCR13.upper_body) == list(range(4, 13))


@pytest.mark.parametrize("name", sorted(sk.SKELETONS))
def test_flip_is_an_involution_that_swaps_left_and_right(name):
    skel = sk.get_skeleton(name)
    perm = skel.flip_permutation
    np.testing.assert_array_equal(perm[perm], np.arange(skel.num_joints))
    for j, i in enumerate(perm):
        a, b = skel.joint_names[j], skel.joint_names[i]
        if a.startswith("left_"):
            assert b == "right_" + a[5:]
        elif a.startswith("right_"):
            assert b == "left_" + a[6:]
        else:
            assert a == b
    # Bones map onto bones under the flip (a mirrored skeleton draws the same figure).
    bones = {frozenset(b) for b in skel.bones}
    assert {frozenset((perm[a], perm[b])) for a, b in skel.bones} == bones


def test_known_sizes_and_subsets():
    sizes = {"lcr13": 13, "lcr17": 17, "h36m17": 17, "mpii16": 16, "coco17": 17, "lsp14": 14, "mupots17": 17,
             "mupots14": 14, "muco21": 21}
    assert {k: s.num_joints for k, s in sk.SKELETONS.items()} == sizes
    assert sk.MUPOTS17.joint_names[:14] == sk.MUPOTS14.joint_names
    assert sk.MUCO21.joint_names[:17] == sk.MUPOTS17.joint_names
    assert sk.MPII16.joint_names[9] == "head_top" and sk.H36M17.joint_names[10] == "head_top"
    assert sk.COCO17.joint_names[0] == "nose"
    # The release's 17 joints begin with its 13 but the head (joint 12 is the top of the head there).
    assert sk.LCR17.joint_names[:12] == sk.LCR13.joint_names[:12] and sk.LCR17.joint_names[12] == "head_top"


def test_body_centre_is_the_mean_of_hips_and_shoulders():
    pose = np.zeros((13, 3))
    pose[sk.LCR13.index("left_hip")] = [1, 0, 0]
    pose[sk.LCR13.index("right_hip")] = [-1, 0, 0]
    pose[sk.LCR13.index("left_shoulder")] = [1, -2, 4]
    pose[sk.LCR13.index("right_shoulder")] = [-1, -2, 0]
    pose[12] = [100, 100, 100]  # the head does not move the centre
    np.testing.assert_allclose(sk.body_centre(pose), [[0, -1, 1]])
    centred = sk.centre_poses(pose[None])
    np.testing.assert_allclose(sk.body_centre(centred), [[[0, 0, 0]]], atol=1e-12)
    with pytest.raises(ValueError, match="skeleton 'lcr13' has 13"):
        sk.body_centre(np.zeros((17, 3)))


def _coco_pose():
    names = sk.COCO17.joint_names
    pose = np.arange(17 * 2, dtype=float).reshape(17, 2) * 3.0
    return pose, names


def test_coco_to_lcr_head_uses_ears_then_eyes_then_nose():
    pose, names = _coco_pose()
    idx = {n: i for i, n in enumerate(names)}
    out, mask = sk.convert(pose, "coco17", "lcr13")
    assert mask.all()
    np.testing.assert_allclose(out[12], (pose[idx["left_ear"]] + pose[idx["right_ear"]]) / 2)
    np.testing.assert_allclose(out[0], pose[idx["right_ankle"]])
    np.testing.assert_allclose(out[11], pose[idx["left_shoulder"]])

    m = np.ones(17, bool)
    m[idx["left_ear"]] = False
    out, mask = sk.convert(pose, "coco17", "lcr13", m)
    np.testing.assert_allclose(out[12], (pose[idx["left_eye"]] + pose[idx["right_eye"]]) / 2)
    m[[idx["left_eye"]]] = False
    out, mask = sk.convert(pose, "coco17", "lcr13", m)
    np.testing.assert_allclose(out[12], pose[idx["nose"]])
    m[idx["nose"]] = False
    out, mask = sk.convert(pose, "coco17", "lcr13", m)
    assert not mask[12] and np.isnan(out[12]).all()


def test_conversions_vectorised_over_poses_match_one_by_one():
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(6, 17, 2))
    masks = rng.random((6, 17)) > 0.3
    out, mask = sk.convert(poses, "coco17", "lcr13", masks)
    for i in range(6):
        o, m = sk.convert(poses[i], "coco17", "lcr13", masks[i])
        np.testing.assert_array_equal(m, mask[i])
        np.testing.assert_allclose(o, out[i])


@pytest.mark.parametrize("src,neck", [("mpii16", "upper_neck"), ("lsp14", "neck"), ("h36m17", "neck_nose")])
def test_head_centre_from_neck_and_head_top(src, neck):
    skel = sk.get_skeleton(src)
    pose = np.random.default_rng(1).normal(size=(skel.num_joints, 3))
    out, mask = sk.convert(pose, src, "lcr13")
    assert mask.all()
    np.testing.assert_allclose(out[12], (pose[skel.index(neck)] + pose[skel.index("head_top")]) / 2)


def test_mupots_head_is_copied_and_lcr_to_mpii_reports_what_it_cannot_derive():
    pose = np.random.default_rng(2).normal(size=(17, 3))
    out, _ = sk.convert(pose, "mupots17", "lcr13")
    np.testing.assert_allclose(out[12], pose[16])
    lcr = np.random.default_rng(3).normal(size=(13, 2))
    out, mask = sk.convert(lcr, "lcr13", "mpii16")
    top = sk.MPII16.index("head_top")
    assert not mask[top] and np.isnan(out[top]).all()
    np.testing.assert_allclose(out[sk.MPII16.index("pelvis")], (lcr[4] + lcr[5]) / 2)
    np.testing.assert_allclose(out[sk.MPII16.index("right_wrist")], lcr[6])
    assert mask.sum() == 15


def test_round_trip_keeps_shared_joints():
    lcr = np.random.default_rng(4).normal(size=(3, 13, 3))
    h36, m = sk.convert(lcr, "lcr13", "h36m17")
    back, mb = sk.convert(h36, "h36m17", "lcr13", m)
    np.testing.assert_allclose(back[:, :12], lcr[:, :12])
    assert not mb[:, 12].any()  # the head centre needs H36M's neck/nose and head top, which LCR lacks


def test_errors_name_the_problem():
    with pytest.raises(KeyError, match="unknown skeleton 'smpl'"):
        sk.get_skeleton("smpl")
    with pytest.raises(ValueError, match="'coco17' has 17"):
        sk.convert(np.zeros((13, 2)), "coco17", "lcr13")
    with pytest.raises(KeyError, match="has no joint 'tail'"):
        sk.LCR13.index("tail")
    nan_pose = np.zeros((17, 2))
    nan_pose[sk.COCO17.index("left_knee")] = np.nan
    _, mask = sk.convert(nan_pose, "coco17", "lcr13")
    assert not mask[sk.LCR13.index("left_knee")]
