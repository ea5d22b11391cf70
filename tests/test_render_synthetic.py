"""Tests of lcr_tf.synthetic and its command line beam_jobs.render_synthetic: ground truth against
independent computations, hand-built occlusion scenes, determinism, encoding, and the command line."""

import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import assert_no_library_notices
from PIL import Image

from lcr_tf import synthetic as rs
from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import body_angles, body_model, pose_corpus

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKEL = skeleton_lib.LCR13
NAMES = SKEL.joint_names
SEED = 3
NUM_RENDERS = 30
# A 256x256 camera with its principal point at the image centre (pixel i covers [i, i+1): the centre is
# at 128).
CAMERA = np.array([300.0, 300.0, 128.0, 128.0])


@pytest.fixture(scope="module")
def corpus():
    return body_model.sample_poses(num_poses=400, seed=0).poses3d


@pytest.fixture(scope="module")
def renders(corpus):
    """Images 0..29 of one set, rendered in order (so index 5 comes after 0..4)."""
    return [rs.render_image(corpus, i, SEED) for i in range(NUM_RENDERS)]


def grey(height=256, width=256):
    return np.full((height, width, 3), 128, np.uint8)


def standing(shoulder_abduction=0.0, stature=1.75):
    """An upright person facing the camera, arms hanging (or abducted by the given degrees); (13, 3)
    metres, body-centred."""
    angles = np.zeros((1, len(body_angles.ANGLE_NAMES)))
    for side in ("left", "right"):
        angles[0, body_angles.ANGLE_INDEX[f"{side}_shoulder_abduction"]] = shoulder_abduction
    return body_model.forward_kinematics(angles, body_model.BodyShape.average(stature))[0]


def centre_of(poses):
    """Mean of the hips and shoulders, written out here rather than taken from lcr_tf.contracts.skeleton."""
    idx = [NAMES.index(n) for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")]
    return poses[..., idx, :].mean(axis=-2, keepdims=True)


# ---------------------------------------------------------------------------------------------------
# Ground truth of random scenes
# ---------------------------------------------------------------------------------------------------

def test_shapes_dtypes_and_people_count(renders):
    config = rs.RenderConfig()
    for r in renders:
        p = r.num_people
        assert config.min_people <= p <= config.max_people
        assert r.image.shape == (256, 256, 3) and r.image.dtype == np.uint8
        assert r.intrinsics.shape == (4,) and r.intrinsics.dtype == np.float32
        for field, shape in (("pose2d", (p, 13, 2)), ("pose3d", (p, 13, 3)), ("pose3d_camera", (p, 13, 3))):
            value = getattr(r, field)
            assert value.shape == shape and value.dtype == np.float32, field
            assert np.all(np.isfinite(value)), field
        assert r.in_image.shape == r.visible.shape == (p, 13)
        assert r.in_image.dtype == r.visible.dtype == bool
        assert not np.any(r.visible & ~r.in_image)
        assert r.person_map.shape == (256, 256) and r.person_map.dtype == np.int16
        assert r.person_map.min() >= -1 and r.person_map.max() < p
        assert sorted(r.depth_order.tolist()) == list(range(p))
        assert r.corpus_index.shape == (p,) and r.body_scale.shape == (p,)
    # Over 30 images the count covers more than one value.
    assert len({r.num_people for r in renders}) >= 3


def test_pose2d_is_the_pinhole_projection_of_pose3d_camera(renders):
    for r in renders:
        fx, fy, cx, cy = r.intrinsics.astype(np.float64)
        x, y, z = np.moveaxis(r.pose3d_camera.astype(np.float64), -1, 0)
        expected = np.stack([fx * x / z + cx, fy * y / z + cy], -1)
        np.testing.assert_allclose(r.pose2d, expected, atol=2e-3, rtol=0)
        # The camera: square pixels, principal point near the image centre.
        assert fx == fy and abs(cx - 128.0) < 0.04 * 256 and abs(cy - 128.0) < 0.04 * 256


def test_pose3d_is_body_centred_camera_pose(renders):
    for r in renders:
        cam = r.pose3d_camera.astype(np.float64)
        np.testing.assert_allclose(r.pose3d, cam - centre_of(cam), atol=2e-5)
        np.testing.assert_allclose(centre_of(r.pose3d.astype(np.float64)), 0.0, atol=2e-6)


def test_pose3d_is_a_scaled_proper_rotation_of_the_corpus_pose(renders, corpus):
    lo, hi = rs.RenderConfig().body_scale_range
    for r in renders:
        assert np.all((r.body_scale >= lo) & (r.body_scale <= hi))
        src = corpus[r.corpus_index].astype(np.float64)
        src = src - centre_of(src)
        ours = r.pose3d.astype(np.float64)
        # Every pairwise joint distance (so every bone) is the corpus one times the body scale.
        d_src = np.linalg.norm(src[:, :, None] - src[:, None], axis=-1)
        d_ours = np.linalg.norm(ours[:, :, None] - ours[:, None], axis=-1)
        np.testing.assert_allclose(d_ours, r.body_scale[:, None, None] * d_src, atol=3e-5)
        bones = np.array(SKEL.bones)
        bone_src = np.linalg.norm(src[:, bones[:, 0]] - src[:, bones[:, 1]], axis=-1)
        bone_ours = np.linalg.norm(ours[:, bones[:, 0]] - ours[:, bones[:, 1]], axis=-1)
        np.testing.assert_allclose(bone_ours / bone_src,
                                   np.broadcast_to(r.body_scale[:, None], bone_src.shape), rtol=1e-4)

        # Not mirrored: the handedness of (right hip -> left hip, right hip -> left shoulder, right hip
        # -> head) is kept.
        def handedness(p):
            rh = p[:, NAMES.index("right_hip")]
            vecs = [p[:, NAMES.index(n)] - rh for n in ("left_hip", "left_shoulder", "head")]
            return np.sign(np.einsum("ni,ni->n", np.cross(vecs[0], vecs[1]), vecs[2]))
        np.testing.assert_array_equal(handedness(ours), handedness(src))


def test_people_are_in_front_of_the_camera_and_in_the_frame(renders):
    config = rs.RenderConfig()
    for r in renders:
        assert np.all(r.pose3d_camera[..., 2] >= config.near_plane)
        u, v = r.pose2d[..., 0], r.pose2d[..., 1]
        inside = (u >= 0) & (u < 256) & (v >= 0) & (v < 256)
        np.testing.assert_array_equal(r.in_image, inside)
        assert np.all(r.in_image.sum(axis=1) >= config.min_joints_in_image)


def test_variety_of_sizes_truncation_and_occlusion(renders):
    heights = np.concatenate([np.ptp(r.pose2d[..., 1], axis=1) / 256 for r in renders])
    assert heights.min() < 0.3 and heights.max() > 0.8, (heights.min(), heights.max())
    cut = np.concatenate([~r.in_image.all(axis=1) for r in renders])
    assert 0.05 < cut.mean() < 0.8  # some people are cut by the border, most are not
    occluded = np.concatenate([(r.in_image & ~r.visible).any(axis=1) for r in renders])
    assert occluded.any() and not occluded.all()
    # Several background kinds give images whose pixels vary.
    for r in renders:
        assert r.image.reshape(-1, 3).std(axis=0).max() > 5


def test_visible_joints_lie_on_their_own_person(renders):
    own = []
    for r in renders:
        p, j = np.nonzero(r.visible)
        col = np.floor(r.pose2d[p, j, 0]).astype(int)
        row = np.floor(r.pose2d[p, j, 1]).astype(int)
        under = r.person_map[row, col]
        # A joint whose pixel nothing was drawn on counts as visible; otherwise it is its own person.
        assert np.all((under == p) | (under == -1))
        own.append(under == p)
    own = np.concatenate(own)
    assert own.size > 100 and own.mean() > 0.95


def test_every_person_is_drawn(renders):
    for r in renders:
        drawn = np.unique(r.person_map)
        visible_people = np.flatnonzero(r.visible.any(axis=1))
        assert set(visible_people.tolist()) <= set(drawn.tolist())


# ---------------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------------

def _same(a, b):
    for field in ("image", "intrinsics", "pose2d", "pose3d", "pose3d_camera", "in_image", "visible",
                  "person_map", "corpus_index", "body_scale"):
        if not np.array_equal(getattr(a, field), getattr(b, field)):
            return False
    return True


def test_same_index_and_seed_give_identical_bytes(corpus, renders):
    alone = rs.render_image(corpus, 5, SEED)  # index 5 by itself ...
    assert _same(alone, renders[5])  # ... equals index 5 rendered after 0..4
    again = rs.render_image(corpus, 5, SEED)
    assert alone.image.tobytes() == again.image.tobytes()
    assert rs.encode_image(alone.image) == rs.encode_image(again.image)


def test_different_index_or_seed_gives_a_different_image(corpus, renders):
    assert not np.array_equal(renders[5].image, renders[6].image)
    assert not np.array_equal(renders[5].image, rs.render_image(corpus, 5, SEED + 1).image)


# ---------------------------------------------------------------------------------------------------
# Empty scenes
# ---------------------------------------------------------------------------------------------------

def test_empty_scenes_are_counted_exactly_and_spread_evenly():
    # f = 1/20: floor((i + 1) / 20) > floor(i / 20) at i = 19, 39, 59, 79, 99.
    np.testing.assert_array_equal(np.flatnonzero(rs.empty_scenes(np.arange(100), 0.05)), [19, 39, 59, 79, 99])
    np.testing.assert_array_equal(np.flatnonzero(rs.empty_scenes(np.arange(25), 0.4)), [2, 4, 7, 9, 12, 14, 17,
                                                                                          19, 22, 24])
    for n, f in ((8000, 0.05), (100, 0.1), (7, 0.5), (1000, 0.123)):
        assert rs.empty_scenes(np.arange(n), f).sum() == int(n * f + 1e-9), (n, f)
    assert not rs.empty_scenes(np.arange(50), 0.0).any() and rs.empty_scenes(np.arange(50), 1.0).all()
    assert rs.empty_scenes(19, 0.05) and not rs.empty_scenes(18, 0.05)
    with pytest.raises(ValueError, match="empty_fraction"):
        rs.empty_scenes(np.arange(3), 1.5)


def test_empty_fraction_renders_backgrounds_and_leaves_the_other_images_unchanged(corpus, renders):
    config = rs.RenderConfig(empty_fraction=0.1)  # images 9, 19 and 29 of 0..29 are empty
    for i in range(NUM_RENDERS):
        r = rs.render_image(corpus, i, SEED, config)
        if i in (9, 19, 29):
            assert r.num_people == 0
            assert r.pose2d.shape == (0, 13, 2) and r.pose3d.shape == r.pose3d_camera.shape == (0, 13, 3)
            assert r.visible.shape == r.in_image.shape == (0, 13) and r.corpus_index.shape == (0,)
            assert r.image.shape == (256, 256, 3) and r.image.dtype == np.uint8
            assert (r.person_map == -1).all()
            assert r.image.reshape(-1, 3).std(axis=0).max() > 5.0  # a textured background, not a flat one
            fx, fy, cx, cy = r.intrinsics
            assert fx == fy and 0.7 * 256 <= fx <= 1.8 * 256 and abs(cx - 128.0) < 0.03 * 256 + 1e-6
            # Seeded like the others: the same index and seed give the same bytes, another seed another image.
            assert rs.render_image(corpus, i, SEED, config).image.tobytes() == r.image.tobytes()
            assert not np.array_equal(rs.render_image(corpus, i, SEED + 1, config).image, r.image)
        else:
            assert _same(r, renders[i]), i


def test_render_dataset_counts_its_empty_images(tmp_path, corpus):
    config = rs.RenderConfig(height=48, width=64, max_people=2, empty_fraction=0.5)
    summary = rs.render_dataset(corpus, 4, 1, str(tmp_path), config)
    assert summary["num_images"] == 4 and summary["num_empty"] == 2
    with open(tmp_path / "ground_truth.json") as fh:
        gt = json.load(fh)
    assert [r["num_people"] == 0 for r in gt["images"]] == [False, True, False, True]
    assert gt["images"][1]["pose2d"] == [] and gt["config"]["empty_fraction"] == 0.5
    assert summary["num_people"] == sum(r["num_people"] for r in gt["images"])


# ---------------------------------------------------------------------------------------------------
# Configuration and bad inputs
# ---------------------------------------------------------------------------------------------------

def test_config_people_count_and_size(corpus):
    config = rs.RenderConfig(height=96, width=160, min_people=3, max_people=3)
    for i in range(4):
        r = rs.render_image(corpus, i, 0, config)
        assert r.num_people == 3
        assert r.image.shape == (96, 160, 3) and r.person_map.shape == (96, 160)
        u, v = r.pose2d[..., 0], r.pose2d[..., 1]
        np.testing.assert_array_equal(r.in_image, (u >= 0) & (u < 160) & (v >= 0) & (v < 96))


def test_presets_override_the_defaults_and_reject_unknown_names():
    for name, fields in rs.PRESETS.items():
        config = rs.preset_config(name, height=64)
        assert config.height == 64
        for field, value in fields.items():
            assert getattr(config, field) == value, (name, field)
    with pytest.raises(ValueError, match="unknown render preset 'sunny'.*clear, studio, wild"):
        rs.preset_config("sunny")


def test_studio_people_are_large_and_whole(corpus):
    config = rs.preset_config("studio", height=128, width=128)
    for i in range(6):
        r = rs.render_image(corpus, i, 3, config)
        assert 1 <= r.num_people <= 2
        # Never cut by a border: every joint projects inside the picture.
        assert r.in_image.all(), i
        heights = r.pose2d[..., 1].max(axis=1) - r.pose2d[..., 1].min(axis=1)
        # Joint extent is below the standing height (head centre to ankles, bent poses) but never tiny.
        assert (heights > 0.25 * 128).all(), (i, heights)


@pytest.mark.parametrize("kwargs, message", [
    ({"min_people": 4, "max_people": 2}, "min_people"),
    ({"min_people": 0}, "min_people"),
    ({"person_height_range": (0.5, 0.2)}, "person_height_range"),
    ({"truncation_prob": 1.5}, "truncation_prob"),
    ({"background_kinds": ("sky",)}, "sky"),
    ({"height": 4}, "image size"),
    ({"empty_fraction": -0.1}, "empty_fraction"),
])
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rs.RenderConfig(**kwargs)


def test_render_image_rejects_bad_inputs(corpus):
    with pytest.raises(ValueError, match=r"\(5, 12, 3\)"):
        rs.render_image(np.zeros((5, 12, 3)), 0, 0)
    with pytest.raises(ValueError, match="index"):
        rs.render_image(corpus, -1, 0)
    with pytest.raises(ValueError, match="seed"):
        rs.render_image(corpus, 0, 1.5)


def test_render_people_rejects_a_joint_behind_the_camera():
    pose = standing() + [0.0, 0.0, 0.5]  # the body centre 0.5 m away: the ankles are in front ...
    pose[NAMES.index("left_wrist"), 2] = -0.1  # ... but a wrist is behind the camera
    with pytest.raises(ValueError, match="person 0 joint 'left_wrist'"):
        rs.render_people(pose[None], CAMERA, grey())
    with pytest.raises(ValueError, match="background"):
        rs.render_people(standing()[None] + [0, 0, 4], CAMERA, np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="appearance"):
        rs.render_people(standing()[None] + [0, 0, 4], CAMERA, grey(), rs.Appearance.uniform(2))


# ---------------------------------------------------------------------------------------------------
# Hand-built scenes: occlusion by another person, by the body itself, by objects; the image border
# ---------------------------------------------------------------------------------------------------

def test_person_alone_facing_the_camera_has_every_joint_visible():
    pose = standing(shoulder_abduction=25.0) + [0.0, 0.0, 4.0]
    r = rs.render_people(pose[None], CAMERA, grey())
    assert r.in_image.all() and r.visible.all()
    assert (r.person_map == 0).sum() > 500  # the body covers a real area
    # Not a flat silhouette: the shading spreads the person's pixels over many grey levels.
    lum = r.image.astype(float).mean(-1)[r.person_map == 0]
    assert np.ptp(lum) > 40


@pytest.mark.parametrize("yaw_deg", [90.0, -90.0])
def test_profile_view_hides_the_far_side(yaw_deg):
    pose = geometry.rotate(standing(), geometry.rotation_y(np.deg2rad(yaw_deg)))
    r = rs.render_people(pose[None] + [0.0, 0.0, 4.0], CAMERA, grey())
    assert r.in_image.all()
    vis = dict(zip(NAMES, r.visible[0]))
    for joint in ("ankle", "knee", "hip", "wrist", "elbow", "shoulder"):
        left, right = f"left_{joint}", f"right_{joint}"
        left_is_far = pose[NAMES.index(left), 2] > pose[NAMES.index(right), 2]
        far, near = (left, right) if left_is_far else (right, left)
        assert not vis[far], far
        if joint != "hip":  # the near arm, hanging at the side, covers the near hip in a profile view
            assert vis[near], near
    assert vis["head"]


@pytest.mark.parametrize("hidden_first", [True, False])
def test_person_fully_behind_another_is_occluded_but_in_the_image(hidden_first):
    front = standing(shoulder_abduction=25.0) + [0.0, 0.0, 3.0]
    # A small person (0.4 scale) twice as far, straight behind the front person's chest: its image is a
    # fifth of the front one's, inside the front torso.
    back = 0.4 * standing(shoulder_abduction=25.0) + [0.0, 0.0, 6.0]
    poses = np.stack([back, front] if hidden_first else [front, back])
    hidden = 0 if hidden_first else 1
    r = rs.render_people(poses, CAMERA, grey())
    assert r.in_image.all()
    assert not r.visible[hidden].any()
    assert r.visible[1 - hidden].all()
    assert not np.any(r.person_map == hidden)
    assert r.depth_order.tolist() == [1 - hidden, hidden]
    # Alone, the back person is seen.
    alone = rs.render_people(back[None], CAMERA, grey())
    assert alone.visible.all()


def test_person_across_the_border():
    pose = standing(shoulder_abduction=25.0) + [0.0, 0.0, 3.0]
    pose[:, 0] -= 1.3  # the body centre 130 px left of the principal point: the right side leaves
    r = rs.render_people(pose[None], CAMERA, grey())
    u, v = r.pose2d[0, :, 0], r.pose2d[0, :, 1]
    expected = (u >= 0) & (u < 256) & (v >= 0) & (v < 256)
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(r.in_image[0], expected)
    assert not r.visible[0][~expected].any()
    assert r.visible[0][expected].all()
    assert not r.in_image[0, NAMES.index("right_wrist")]  # the person's right is on the image's left


def test_foreground_object_occludes_joints():
    pose = standing(shoulder_abduction=25.0) + [0.0, 0.0, 4.0]
    # A pole over the image's left half: the person's right side (image left, x < 128) is behind it.
    pole = np.array([[-0.5, -0.5], [127.5, -0.5], [127.5, 256.5], [-0.5, 256.5]])
    r = rs.render_people(pose[None], CAMERA, grey(), occluders=[(pole, (200, 30, 30))])
    left_of_pole = r.pose2d[0, :, 0] < 127.0
    assert left_of_pole.any() and (~left_of_pole).any()
    assert not r.visible[0][left_of_pole].any()
    assert r.visible[0][r.pose2d[0, :, 0] > 129.0].all()
    assert np.all(r.person_map[:, :126] == -1)
    assert np.all(r.image[128, 60] > [150, 0, 0]) and r.image[128, 60, 1] < 80


@pytest.mark.parametrize("column, z", [(100, 4.0), (37, 8.0), (150, 12.0)])
def test_a_joints_label_is_the_centre_of_the_pixel_drawn_for_it(column, z):
    """Pixel i covers [i, i+1) (lcr_tf.contracts.geometry), OpenCV's integer coordinates are pixel
    centres: a head labelled at x = column + 0.5 must be drawn centred on pixel ``column``. A frontal
    person is left-right symmetric about the head, so the painted pixels' centres (col + 0.5) average to
    the label (within OpenCV's rounding of circle outlines, far below the half pixel a convention error
    would give), and the head's own pixel is (floor(y), floor(x))."""
    pose = standing(shoulder_abduction=25.0)
    head = NAMES.index("head")
    fx, _, cx, cy = CAMERA
    # Translate so the head projects exactly to the centre of a pixel of column ``column``.
    shift = np.array([(column + 0.5 - cx) * z / fx - pose[head, 0], 0.0, z])
    r = rs.render_people(pose[None] + shift, CAMERA, grey())
    label = r.pose2d[0, head]
    assert label[0] == pytest.approx(column + 0.5, abs=1e-4)
    rows, cols = np.nonzero(r.person_map == 0)
    assert np.mean(cols + 0.5) == pytest.approx(column + 0.5, abs=0.1)
    assert r.person_map[int(np.floor(label[1])), column] == 0
    # The same person one pixel to the right is drawn one column to the right.
    moved = rs.render_people(pose[None] + shift + [z / fx, 0.0, 0.0], CAMERA, grey())
    assert np.mean(np.nonzero(moved.person_map == 0)[1]) == pytest.approx(np.mean(cols) + 1.0, abs=0.05)


def test_sizes_follow_perspective():
    """Twice as far is half as tall on the image, drawn outline included."""
    heights = []
    for z in (3.0, 6.0):
        r = rs.render_people(standing()[None] + [0.0, 0.0, z], CAMERA, grey())
        rows = np.flatnonzero((r.person_map == 0).any(axis=1))
        heights.append(rows[-1] - rows[0] + 1)
    assert heights[0] / heights[1] == pytest.approx(2.0, rel=0.06)
    # About the stature: 1.75 m at 3 m with f = 300 px is 175 px (the head and shoes add a little).
    assert 160 < heights[0] < 200


# ---------------------------------------------------------------------------------------------------
# Backgrounds and encoding
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", rs.BACKGROUND_KINDS)
def test_backgrounds_are_textured(kind):
    rng = np.random.default_rng(0)
    images = [rs.make_background(rng, 64, 96, kind) for _ in range(3)]
    for img in images:
        assert img.shape == (64, 96, 3) and img.dtype == np.uint8
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # not one flat colour
    assert not np.array_equal(images[0], images[1])
    with pytest.raises(ValueError, match="unknown background kind"):
        rs.make_background(rng, 8, 8, "sky")


def test_encode_png_round_trip_keeps_rgb_order():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    decoded = Image.open(io.BytesIO(rs.encode_image(image, "png")))
    assert decoded.format == "PNG" and decoded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(decoded), image)


def test_encode_jpeg_keeps_rgb_order():
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., 0] = 230  # pure red
    image[16:, :, :] = [10, 20, 220]  # lower half blue
    data = rs.encode_image(image, "jpeg", quality=95)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "JPEG"
    pixels = np.asarray(decoded.convert("RGB")).astype(int)
    assert np.abs(pixels - image).mean() < 4
    assert pixels[4, 4, 0] > 200 and pixels[4, 4, 2] < 40
    assert pixels[28, 4, 2] > 190 and pixels[28, 4, 0] < 40
    assert len(rs.encode_image(image, "jpeg", quality=20)) < len(data)


def test_encode_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        rs.encode_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="format"):
        rs.encode_image(np.zeros((4, 4, 3), np.uint8), "gif")


# ---------------------------------------------------------------------------------------------------
# Speed (printed, never asserted) and the command line
# ---------------------------------------------------------------------------------------------------

def test_print_render_time(corpus):
    config = rs.RenderConfig(min_people=6, max_people=6)
    rs.render_image(corpus, 0, 1, config)  # warm-up
    times = []
    for i in range(10):
        start = time.perf_counter()
        rs.render_image(corpus, i, 1, config)
        times.append(time.perf_counter() - start)
    print(f"\nrender_image 256x256, 6 people: median {1e3 * np.median(times):.1f} ms over {len(times)} "
          f"images (min {1e3 * min(times):.1f}, max {1e3 * max(times):.1f})")


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "beam_jobs.render_synthetic", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_help():
    proc = _run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert "--num_images" in proc.stdout and "--contact_sheet" in proc.stdout
    empty_help = proc.stdout.split("--empty_fraction:")[1].split("\n  --")[0]
    assert "no people" in empty_help and "(default: '0.0')" in empty_help


def test_cli_writes_images_ground_truth_and_contact_sheet(tmp_path, corpus):
    poses_path = str(tmp_path / "poses.npz")
    pose_corpus.PoseCorpus(corpus[:50], np.full(50, "t"), np.arange(50),
                           {"skeleton": "lcr13"}).save(poses_path)
    out = tmp_path / "out"
    sheet = tmp_path / "sheet.png"
    proc = _run_cli("--num_images=3", "--seed=4", f"--output_dir={out}", f"--poses={poses_path}",
                    "--height=96", "--width=128", f"--contact_sheet={sheet}")
    assert proc.returncode == 0, proc.stderr
    assert_no_library_notices(proc.stdout, proc.stderr)
    images = sorted(f for f in os.listdir(out) if f.endswith(".jpg"))
    assert images == ["000000.jpg", "000001.jpg", "000002.jpg"]
    with open(out / "ground_truth.json") as fh:
        gt = json.load(fh)
    assert gt["joints"] == list(NAMES) and len(gt["images"]) == 3
    config = rs.RenderConfig(height=96, width=128)
    for record in gt["images"]:
        decoded = Image.open(out / record["file"])
        assert decoded.format == "JPEG" and decoded.size == (128, 96)
        # The JSON holds the ground truth of render_image for the same corpus, index and seed.
        r = rs.render_image(corpus[:50], record["index"], 4, config)
        np.testing.assert_allclose(record["pose2d"], r.pose2d, atol=1e-3)
        np.testing.assert_allclose(record["pose3d_camera"], r.pose3d_camera, atol=1e-5)
        assert record["visible"] == r.visible.tolist() and record["in_image"] == r.in_image.tolist()
        assert np.abs(np.asarray(decoded, dtype=float) - r.image).mean() < 8
    with Image.open(sheet) as img:
        assert img.format == "PNG" and img.size[0] > 100


def test_cli_rejects_missing_output_dir():
    proc = _run_cli("--num_images=1")
    assert proc.returncode != 0
    assert "output_dir" in proc.stderr + proc.stdout
