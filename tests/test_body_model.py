"""Tests of the parametric body model. Expectations are computed here from joint positions (or by hand),
not by calling the model's internals."""

import numpy as np
import pytest

from lcr_tf.contracts.skeleton import LCR13
from lcr_tf.poses import body_angles, body_model, pose_corpus

J = {name: i for i, name in enumerate(LCR13.joint_names)}
UP = np.array([0.0, -1.0, 0.0])  # camera axes: y points down
PER_FAMILY = 600


@pytest.fixture(scope="module")
def corpus():
    return body_model.sample_poses(PER_FAMILY * len(body_angles.FAMILIES), seed=7)


@pytest.fixture(scope="module")
def poses(corpus):
    return corpus.poses3d.astype(np.float64)


def _vec(p, a, b):
    return p[..., J[b], :] - p[..., J[a], :]


def _angle_deg(u, w):
    cos = np.sum(u * w, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _facing(p):
    """(N, 3) unit horizontal facing direction: the left-right hip axis crossed with up."""
    left = _vec(p, "right_hip", "left_hip")
    fwd = np.cross(left, UP)
    fwd[:, 1] = 0.0
    return _unit(fwd)


def _family(corpus, poses, name):
    return poses[corpus.trial == name]


# --- format ------------------------------------------------------------------------------------------

def test_shapes_dtypes_metadata(corpus):
    n = PER_FAMILY * 8
    assert corpus.poses3d.shape == (n, 13, 3) and corpus.poses3d.dtype == np.float32
    assert corpus.trial.shape == (n,) and corpus.frame.shape == (n,) and corpus.frame.dtype == np.int32
    assert np.all(np.isfinite(corpus.poses3d))
    meta = corpus.metadata
    assert meta["skeleton"] == "lcr13" and meta["units"] == "m" and meta["source"] == "lcr_tf.poses.body_model"
    assert meta["seed"] == 7
    assert meta["families"] == ["standing", "walking", "running", "sitting", "crouching", "reaching",
                                "arms_raised", "bending"]
    for name in meta["families"]:
        sel = corpus.trial == name
        assert np.array_equal(corpus.frame[sel], np.arange(PER_FAMILY))


def test_save_load_round_trip(tmp_path):
    c = body_model.sample_poses(40, seed=3, families=["walking", "sitting"])
    path = str(tmp_path / "poses.npz")
    c.save(path)
    back = pose_corpus.load(path, skeleton="lcr13")
    assert back.poses3d.tobytes() == c.poses3d.tobytes()
    assert list(back.trial) == list(c.trial) and np.array_equal(back.frame, c.frame)
    assert back.metadata["source"] == "lcr_tf.poses.body_model" and back.metadata["families"] == ["walking", "sitting"]


def test_zero_poses():
    c = body_model.sample_poses(0)
    assert c.poses3d.shape == (0, 13, 3) and len(c) == 0


# --- determinism ---------------------------------------------------------------------------------------

def test_same_seed_same_bytes_different_seed_differs():
    a = body_model.sample_poses(300, seed=11)
    b = body_model.sample_poses(300, seed=11)
    c = body_model.sample_poses(300, seed=12)
    assert a.poses3d.tobytes() == b.poses3d.tobytes()
    assert np.array_equal(a.trial, b.trial) and np.array_equal(a.frame, b.frame)
    assert np.abs(a.poses3d - c.poses3d).max() > 0.1


def test_family_stream_independent_of_other_families():
    alone = body_model.sample_poses(50, seed=5, families=["running"])
    mixed = body_model.sample_poses(100, seed=5, families=["sitting", "running"])
    assert np.array_equal(mixed.poses3d[mixed.trial == "running"], alone.poses3d)


# --- shares --------------------------------------------------------------------------------------------

def test_default_shares_equal_and_every_family_present():
    c = body_model.sample_poses(803, seed=0)
    names, counts = np.unique(c.trial, return_counts=True)
    assert set(names) == {"standing", "walking", "running", "sitting", "crouching", "reaching",
                          "arms_raised", "bending"}
    assert counts.sum() == 803 and counts.max() - counts.min() <= 1


def test_requested_families_and_weights():
    c = body_model.sample_poses(90, seed=0, families=["bending", "walking", "crouching"])
    assert dict(zip(*np.unique(c.trial, return_counts=True))) == {"bending": 30, "walking": 30, "crouching": 30}
    assert list(c.trial[:30]) == ["bending"] * 30  # grouped, in the order asked
    c = body_model.sample_poses(400, seed=0, families={"walking": 3.0, "sitting": 1.0})
    assert dict(zip(*np.unique(c.trial, return_counts=True))) == {"walking": 300, "sitting": 100}
    c = body_model.sample_poses(10, seed=0, families="sitting")
    assert set(c.trial) == {"sitting"}
    assert body_angles.family_counts(7, {"walking": 1, "running": 1, "sitting": 0}) == \
        {"walking": 4, "running": 3, "sitting": 0}


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_poses=10, families=["walking", "dancing"]), "dancing"),
    (dict(num_poses=-1), "num_poses"),
    (dict(num_poses=2.5), "num_poses"),
    (dict(num_poses=10, families=[]), "empty"),
    (dict(num_poses=10, families=["walking", "walking"]), "repeat"),
    (dict(num_poses=10, families={"walking": -1.0, "sitting": 2.0}), "weights"),
    (dict(num_poses=10, stature_range=(1.9, 1.5)), "stature_range"),
    (dict(num_poses=10, seed=-1), "seed"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        body_model.sample_poses(**kwargs)


def test_bad_forward_kinematics_inputs():
    shape = body_model.BodyShape.average([1.7, 1.8])
    with pytest.raises(ValueError, match="ANGLE_NAMES"):
        body_model.forward_kinematics(np.zeros((2, 5)), shape)
    with pytest.raises(ValueError, match="BodyShape"):
        body_model.forward_kinematics(np.zeros((3, len(body_angles.ANGLE_NAMES))), shape)
    with pytest.raises(ValueError, match="thigh"):
        body_model.BodyShape(**{**vars(shape), "thigh": np.array([0.4, -0.1])})
    with pytest.raises(ValueError, match="ANGLE_NAMES"):
        body_angles.clip_to_limits(np.zeros(len(body_angles.ANGLE_NAMES)))
    with pytest.raises(KeyError, match="elbow_twist"):
        body_model.sample_pose_parameters(2).angle("left_elbow_twist")


# --- geometry of the output ---------------------------------------------------------------------------

def test_body_centred(poses):
    centre = poses[:, [J["left_hip"], J["right_hip"], J["left_shoulder"], J["right_shoulder"]]].mean(1)
    np.testing.assert_allclose(centre, 0.0, atol=1e-6)


# Anthropometric segment lengths for statures 1.50-1.95 m (thigh and shin about 0.245 of stature, upper
# arm about 0.19, forearm about 0.145), with a few per cent of individual variation.
@pytest.mark.parametrize("a, b, lo, hi", [
    ("hip", "knee", 0.34, 0.51), ("knee", "ankle", 0.34, 0.51),
    ("shoulder", "elbow", 0.26, 0.39), ("elbow", "wrist", 0.20, 0.30),
])
def test_bone_lengths_symmetric_and_in_range(poses, a, b, lo, hi):
    left = np.linalg.norm(_vec(poses, f"left_{a}", f"left_{b}"), axis=-1)
    right = np.linalg.norm(_vec(poses, f"right_{a}", f"right_{b}"), axis=-1)
    np.testing.assert_allclose(left, right, atol=2e-6)
    assert left.min() >= lo and left.max() <= hi
    assert left.max() - left.min() > 0.5 * (hi - lo)  # people do differ in size


def test_lengths_scale_with_stature():
    params = body_model.sample_pose_parameters(400, seed=2)
    p = body_model.forward_kinematics(params.angles_deg, params.shape)
    thigh = np.linalg.norm(_vec(p, "left_hip", "left_knee"), axis=-1)
    arm = np.linalg.norm(_vec(p, "left_shoulder", "left_elbow"), axis=-1)
    assert np.all((thigh / params.shape.stature > 0.23) & (thigh / params.shape.stature < 0.26))
    assert np.all((arm / params.shape.stature > 0.175) & (arm / params.shape.stature < 0.20))
    assert params.shape.stature.min() >= 1.5 and params.shape.stature.max() <= 1.95
    tall = body_model.sample_poses(50, seed=2, stature_range=(1.9, 1.9)).poses3d
    tall_thigh = np.linalg.norm(_vec(tall, "right_hip", "right_knee"), axis=-1)
    assert np.all(np.abs(tall_thigh / (0.245 * 1.9) - 1) < 0.045)


def test_sampled_angles_within_limits():
    params = body_model.sample_pose_parameters(2000, seed=4)
    for i, name in enumerate(body_angles.ANGLE_NAMES):
        lo, hi = body_angles.JOINT_LIMITS_DEG[name]
        assert params.angles_deg[:, i].min() >= lo and params.angles_deg[:, i].max() <= hi, name
    assert body_angles.JOINT_LIMITS_DEG["left_knee_flexion"] == (0.0, 150.0)
    assert body_angles.JOINT_LIMITS_DEG["right_elbow_flexion"] == (0.0, 150.0)


def test_knee_and_elbow_angles_within_limits(poses):
    for s in ("left", "right"):
        knee = _angle_deg(_vec(poses, f"{s}_hip", f"{s}_knee"), _vec(poses, f"{s}_knee", f"{s}_ankle"))
        elbow = _angle_deg(_vec(poses, f"{s}_shoulder", f"{s}_elbow"), _vec(poses, f"{s}_elbow", f"{s}_wrist"))
        assert knee.max() <= 150.01 and elbow.max() <= 150.01
        assert knee.max() > 120 and elbow.max() > 100  # the limits are actually reached


def test_knees_bend_forward(corpus, poses):
    """The shin only swings backwards: thigh x shin points to the body's left for every bent knee."""
    left_axis = _unit(_vec(poses, "right_hip", "left_hip"))
    for s in ("left", "right"):
        thigh = _vec(poses, f"{s}_hip", f"{s}_knee")
        shin = _vec(poses, f"{s}_knee", f"{s}_ankle")
        bent = _angle_deg(thigh, shin) > 5
        hinge = np.sum(np.cross(_unit(thigh), _unit(shin)) * left_axis, -1)
        assert bent.mean() > 0.3 and np.all(hinge[bent] > 0)
    # Upright families: a bent knee sticks out in front of the hip-ankle line, along the facing direction.
    upright = np.isin(corpus.trial, ["standing", "walking", "running"])
    p = poses[upright]
    fwd = _facing(p)
    for s in ("left", "right"):
        hip, knee, ankle = p[:, J[f"{s}_hip"]], p[:, J[f"{s}_knee"]], p[:, J[f"{s}_ankle"]]
        chord = _unit(ankle - hip)
        offset = (knee - hip) - np.sum((knee - hip) * chord, -1, keepdims=True) * chord
        bent = _angle_deg(knee - hip, ankle - knee) > 20
        assert bent.sum() > 100 and np.all(np.sum(offset[bent] * fwd[bent], -1) > 0)


# --- motion families ----------------------------------------------------------------------------------

def test_standing_upright(corpus, poses):
    p = _family(corpus, poses, "standing")
    hips_y = p[:, [J["left_hip"], J["right_hip"]], 1].mean(1)
    assert np.all(p[:, J["head"], 1] < hips_y - 0.4)
    assert np.all(p[:, [J["left_ankle"], J["right_ankle"]], 1].min(1) > hips_y + 0.6)
    height = p[:, [J["left_ankle"], J["right_ankle"]], 1].max(1) - p[:, J["head"], 1]
    assert height.min() > 1.2 and height.max() < 1.85  # head centre to ankle ~0.89 stature


def test_sitting_knees_and_hips_near_right_angles(corpus, poses):
    p = _family(corpus, poses, "sitting")
    knees = np.concatenate([_angle_deg(_vec(p, f"{s}_hip", f"{s}_knee"), _vec(p, f"{s}_knee", f"{s}_ankle"))
                            for s in ("left", "right")])
    assert 85 < knees.mean() < 95 and knees.min() > 55 and knees.max() < 125
    # Thighs near horizontal: about 90 degrees from the upward trunk direction.
    trunk = (p[:, [J["left_shoulder"], J["right_shoulder"]]].mean(1)
             - p[:, [J["left_hip"], J["right_hip"]]].mean(1))
    hip_angle = _angle_deg(trunk, _vec(p, "left_hip", "left_knee"))
    assert 70 < 180 - hip_angle.mean() < 110


def test_crouching_deep_flexion(corpus, poses):
    p = _family(corpus, poses, "crouching")
    knee = _angle_deg(_vec(p, "left_hip", "left_knee"), _vec(p, "left_knee", "left_ankle"))
    assert knee.mean() > 115 and knee.min() > 95
    hips_y = p[:, [J["left_hip"], J["right_hip"]], 1].mean(1)
    knees_y = p[:, [J["left_knee"], J["right_knee"]], 1].mean(1)
    assert np.mean(knees_y - hips_y) < 0.15  # knees almost at hip height


def test_arms_raised_wrists_above_head(corpus, poses):
    p = _family(corpus, poses, "arms_raised")
    assert np.all(p[:, [J["left_wrist"], J["right_wrist"]], 1].max(1) < p[:, J["head"], 1])


def test_reaching_has_a_straight_elevated_arm(corpus, poses):
    p = _family(corpus, poses, "reaching")
    trunk_down = _unit(p[:, [J["left_hip"], J["right_hip"]]].mean(1)
                       - p[:, [J["left_shoulder"], J["right_shoulder"]]].mean(1))
    reaching = np.zeros(len(p), bool)
    both = np.ones(len(p), bool)
    for s in ("left", "right"):
        arm = _vec(p, f"{s}_shoulder", f"{s}_wrist")
        length = (np.linalg.norm(_vec(p, f"{s}_shoulder", f"{s}_elbow"), axis=-1)
                  + np.linalg.norm(_vec(p, f"{s}_elbow", f"{s}_wrist"), axis=-1))
        out = (np.linalg.norm(arm, axis=-1) > 0.93 * length) & (_angle_deg(arm, trunk_down) > 45)
        reaching |= out
        both &= out
    assert np.all(reaching) and 0.2 < both.mean() < 0.5


def test_bending_trunk_forward_legs_straight(corpus, poses):
    p = _family(corpus, poses, "bending")
    trunk = (p[:, [J["left_shoulder"], J["right_shoulder"]]].mean(1)
             - p[:, [J["left_hip"], J["right_hip"]]].mean(1))
    tilt = _angle_deg(trunk, UP)
    assert tilt.min() > 30 and tilt.mean() > 60
    # The shoulders go forward (not backward) of the hips.
    assert np.all(np.sum(trunk * _facing(p), -1) > 0)
    knees = _angle_deg(_vec(p, "left_hip", "left_knee"), _vec(p, "left_knee", "left_ankle"))
    assert knees.mean() < 20 and knees.max() < 40


@pytest.mark.parametrize("family", ["walking", "running"])
def test_gait_alternates_legs_and_swings_opposite_arms(corpus, poses, family):
    p = _family(corpus, poses, family)
    fwd = _facing(p)
    legs = np.sum(_vec(p, "right_ankle", "left_ankle") * fwd, -1)  # > 0: left foot in front
    arms = np.sum(_vec(p, "right_wrist", "left_wrist") * fwd, -1)
    assert 0.35 < np.mean(legs > 0) < 0.65
    assert np.abs(legs).max() > (0.5 if family == "walking" else 0.6)
    assert np.corrcoef(legs, arms)[0, 1] < -0.6


# --- variety ---------------------------------------------------------------------------------------

def test_diversity(corpus, poses):
    rng = np.random.default_rng(0)
    i, k = rng.integers(0, len(poses), (2, 2000))
    keep = i != k
    mpjpe = np.linalg.norm(poses[i[keep]] - poses[k[keep]], axis=-1).mean()
    assert mpjpe > 0.3
    for name in body_angles.FAMILIES:
        p = _family(corpus, poses, name)
        a, b = rng.integers(0, len(p), (2, 500))
        within = np.linalg.norm(p[a[a != b]] - p[b[a != b]], axis=-1).mean()
        assert within > 0.15, name
    rounded = np.round(poses.reshape(len(poses), -1), 4)
    assert len(np.unique(rounded, axis=0)) == len(poses)


def test_facing_covers_all_azimuths(poses):
    fwd = _facing(poses)
    azimuth = np.arctan2(fwd[:, 0], fwd[:, 2])
    counts, _ = np.histogram(azimuth, bins=12, range=(-np.pi, np.pi))
    expected = len(poses) / 12
    assert np.all(np.abs(counts - expected) < 0.3 * expected)


# --- forward kinematics by hand -------------------------------------------------------------------

def _one(**angles):
    a = np.zeros((1, len(body_angles.ANGLE_NAMES)))
    for name, value in angles.items():
        a[0, body_angles.ANGLE_INDEX[name]] = value
    return a


def _hand_shape():
    return body_model.BodyShape(
        stature=np.array([1.8]), thigh=np.array([0.44]), shin=np.array([0.43]), upper_arm=np.array([0.33]),
        forearm=np.array([0.26]), lumbar=np.array([0.2]), thoracic=np.array([0.3]),
        neck_head=np.array([0.2]), hip_width=np.array([0.2]), shoulder_width=np.array([0.36]))


def _rest_pose():
    """Joints of the zero pose, by hand, relative to the pelvis: facing the camera (-z), left at +x."""
    ref = {"pelvis": (0, 0, 0), "left_hip": (0.1, 0, 0), "right_hip": (-0.1, 0, 0),
           "left_knee": (0.1, 0.44, 0), "right_knee": (-0.1, 0.44, 0),
           "left_ankle": (0.1, 0.87, 0), "right_ankle": (-0.1, 0.87, 0),
           "spine": (0, -0.2, 0), "thorax": (0, -0.5, 0), "head": (0, -0.7, 0),
           "left_shoulder": (0.18, -0.5, 0), "right_shoulder": (-0.18, -0.5, 0),
           "left_elbow": (0.18, -0.17, 0), "right_elbow": (-0.18, -0.17, 0),
           "left_wrist": (0.18, 0.09, 0), "right_wrist": (-0.18, 0.09, 0)}
    return {k: np.array(v, float) for k, v in ref.items()}


def _fk_dict(angles):
    pts = body_model.forward_kinematics(angles, _hand_shape(), internal=True)[0]
    pts = pts - pts[body_model.POINT_NAMES.index("pelvis")]
    return {name: pts[i] for i, name in enumerate(body_model.POINT_NAMES)}


def test_forward_kinematics_rest_pose():
    got = _fk_dict(_one())
    for name, expected in _rest_pose().items():
        np.testing.assert_allclose(got[name], expected, atol=1e-12, err_msg=name)
    lcr = body_model.forward_kinematics(_one(), _hand_shape())
    assert lcr.shape == (1, 13, 3)
    # Centre of hips and shoulders is (0, -0.25, 0) from the pelvis: the output is shifted by that.
    np.testing.assert_allclose(lcr[0, J["head"]], [0, -0.45, 0], atol=1e-12)


def test_forward_kinematics_single_joints():
    s2 = np.sqrt(0.5)
    cases = [
        # sitting leg: thigh forward (-z), shin straight down
        (dict(left_hip_flexion=90, left_knee_flexion=90), {"left_knee": (0.1, 0, -0.44),
                                                            "left_ankle": (0.1, 0.43, -0.44)}),
        # knee bent with the thigh vertical: the shin goes backwards (+z)
        (dict(right_knee_flexion=90), {"right_ankle": (-0.1, 0.44, 0.43)}),
        # abduction takes each leg away from the midline
        (dict(left_hip_abduction=45, right_hip_abduction=45),
         {"left_knee": (0.1 + 0.44 * s2, 0.44 * s2, 0), "right_knee": (-0.1 - 0.44 * s2, 0.44 * s2, 0)}),
        # seated, internal rotation of the hip swings the foot outwards
        (dict(left_hip_flexion=90, left_knee_flexion=90, left_hip_rotation=30),
         {"left_ankle": (0.1 + 0.43 * 0.5, 0.43 * np.sqrt(0.75), -0.44)}),
        # arm straight up in front, and straight out to the side
        (dict(left_shoulder_flexion=180), {"left_wrist": (0.18, -0.5 - 0.59, 0)}),
        (dict(right_shoulder_abduction=90), {"right_wrist": (-0.18 - 0.59, -0.5, 0)}),
        # elbow bent with the arm hanging: the forearm points forward
        (dict(left_elbow_flexion=90), {"left_wrist": (0.18, -0.17, -0.26)}),
        # forward bend, half at each trunk joint: lumbar tilted 45 degrees, thoracic segment horizontal
        (dict(spine_flexion=90), {"spine": (0, -0.2 * s2, -0.2 * s2), "thorax": (0, -0.2 * s2, -0.2 * s2 - 0.3),
                                  "left_ankle": (0.1, 0.87, 0)}),
        # side bend towards the left, split the same way
        (dict(spine_lateral=90), {"thorax": (0.2 * s2 + 0.3, -0.2 * s2, 0)}),
        # chin down tips the head centre forward
        (dict(neck_flexion=90), {"head": (0, -0.5, -0.2)}),
        # the person turns a quarter to their left: they now face +x, their left side is away (+z)
        (dict(root_yaw=90), {"left_hip": (0, 0, 0.1), "left_shoulder": (0, -0.5, 0.18)}),
        # the whole body leans forward about the pelvis
        (dict(root_pitch=90), {"head": (0, 0, -0.7), "left_ankle": (0.1, 0, 0.87)}),
        # sideways lean to the left moves the head to +x
        (dict(root_roll=90), {"head": (0.7, 0, 0)}),
    ]
    for angles, expected in cases:
        got = _fk_dict(_one(**angles))
        for name, value in expected.items():
            np.testing.assert_allclose(got[name], value, atol=1e-12, err_msg=f"{angles}: {name}")


def test_clip_to_limits():
    a = _one(left_knee_flexion=-10, right_elbow_flexion=170, root_yaw=190, spine_twist=20)
    out = body_angles.clip_to_limits(a)
    assert out[0, body_angles.ANGLE_INDEX["left_knee_flexion"]] == 0
    assert out[0, body_angles.ANGLE_INDEX["right_elbow_flexion"]] == 150
    assert out[0, body_angles.ANGLE_INDEX["root_yaw"]] == pytest.approx(-170)
    assert out[0, body_angles.ANGLE_INDEX["spine_twist"]] == 20


def test_kinematic_tree_is_consistent():
    assert body_model.POINT_NAMES[:13] == LCR13.joint_names
    names = set(body_model.POINT_NAMES)
    children = [child for _, child, _ in body_model.SEGMENTS]
    assert len(children) == len(set(children)) == len(names) - 1  # a tree rooted at the pelvis
    assert set(children) | {"pelvis"} == names
    fields = {f for f in vars(body_model.BodyShape.average([1.7]))}
    assert {key for _, _, key in body_model.SEGMENTS} <= fields
