"""lcr_tf.data.augment: hand-computed crops and flips, image content that follows the poses, anchor
re-assignment against the NumPy reference, seeded randomness."""

import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import batch_keys
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.data import augment
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import body_model

J = 13
LCR = skeleton_lib.LCR13


def _element(image, pose2d, boxes=None, pose3d=None, visible=None, annotated=None, intrinsics=(0, 0, 0, 0),
             ignore=None):
    """An element dict as the decoder makes it, from NumPy values (``ignore``: (R, 4) ignore boxes,
    none when None)."""
    pose2d = np.asarray(pose2d, np.float32).reshape(-1, J, 2)
    p = pose2d.shape[0]
    if boxes is None:
        boxes = np.concatenate([pose2d.min(1) - 1, pose2d.max(1) + 1], -1)
    rng = np.random.default_rng(0)
    pose3d = rng.normal(0, 0.3, (p, J, 3)) if pose3d is None else pose3d
    ones = np.ones((p, J), bool)
    extra = {} if ignore is None else {batch_keys.IGNORE_BOXES: tf.constant(np.reshape(ignore, (-1, 4)), tf.float32)}
    return extra | {
        batch_keys.IMAGE: tf.constant(image), batch_keys.IMAGE_ID: tf.constant("e"),
        batch_keys.IMAGE_SOURCE: tf.constant("t"),
        batch_keys.SOURCE_FILE: tf.constant(""), batch_keys.ORIGINAL_SIZE: tf.constant(image.shape[:2], tf.int32),
        batch_keys.INTRINSICS: tf.constant(intrinsics, tf.float32), batch_keys.TRANSFORM: tf.constant([1.0, 1, 0, 0]),
        batch_keys.NUM_PEOPLE: tf.constant(p), batch_keys.BOXES: tf.constant(np.reshape(boxes, (-1, 4)), tf.float32),
        batch_keys.POSE2D: tf.constant(pose2d),
        batch_keys.ANNOTATED: tf.constant(ones if annotated is None else annotated),
        batch_keys.VISIBLE: tf.constant(ones if visible is None else visible),
        batch_keys.COMPLETED: tf.constant(~ones), batch_keys.POSE3D: tf.constant(pose3d, tf.float32),
        batch_keys.POSE3D_SOURCE: tf.zeros([p], tf.int32), batch_keys.PSEUDO_GT_DISTANCE: tf.zeros([p]),
        batch_keys.ANCHOR_CLASS: tf.fill([p], 5),
    }


def _pose_at(points):
    """(J, 2) pose whose joints are the given points, cycled."""
    points = np.asarray(points, np.float32)
    return points[np.arange(J) % len(points)]


def _np(d):
    return {k: v.numpy() for k, v in d.items()}


def test_crop_window_maps_points_boxes_intrinsics_by_hand():
    image = np.zeros((80, 100, 3), np.uint8)
    inside = _pose_at([[30, 20], [70, 30]])          # second point falls right of the window
    outside = _pose_at([[80, 20], [90, 70]])         # entirely right of the window: dropped
    ex = _element(image, [inside, outside], boxes=[[25, 15, 65, 45], [75, 10, 95, 75]],
                  intrinsics=(500, 500, 50, 40))
    out = _np(augment.crop_and_resize(ex, [20.0, 10.0, 60.0, 50.0], 80))   # 40 px -> 80 px: scale 2
    assert out[batch_keys.IMAGE].shape == (80, 80, 3) and out[batch_keys.IMAGE].dtype == np.float32
    assert out[batch_keys.POSE2D].shape == (1, J, 2) and int(out[batch_keys.NUM_PEOPLE_OUTSIDE]) == 1
    np.testing.assert_allclose(out[batch_keys.POSE2D][0, 0], [(30 - 20) * 2, (20 - 10) * 2])
    np.testing.assert_allclose(out[batch_keys.POSE2D][0, 1], [(70 - 20) * 2, (30 - 10) * 2])  # kept, at x=100 > 80
    np.testing.assert_array_equal(out[batch_keys.VISIBLE][0], np.arange(J) % 2 == 0)
    np.testing.assert_array_equal(out[batch_keys.ANNOTATED][0], np.ones(J, bool))             # labels stay
    np.testing.assert_allclose(out[batch_keys.BOXES][0], [10, 10, 90, 70])                    # not clipped
    np.testing.assert_allclose(out[batch_keys.INTRINSICS], [1000, 1000, 60, 60])
    np.testing.assert_allclose(out[batch_keys.TRANSFORM], [2, 2, -40, -20])
    np.testing.assert_array_equal(out[batch_keys.ANCHOR_CLASS], [5])


def test_ignore_boxes_move_like_pose_boxes_then_are_clipped_and_emptied_ones_dropped():
    image = np.zeros((80, 100, 3), np.uint8)
    pose = _pose_at([[30, 20], [50, 40]])
    ignore = [[25, 15, 65, 45],      # -> [10, 10, 90, 70], clipped to the 80 px output: [10, 10, 80, 70]
              [0, 0, 10, 10],        # -> [-40, -20, -20, 0]: nothing left, dropped
              [55, 45, 95, 75]]      # -> [70, 70, 150, 130] -> [70, 70, 80, 80]
    ex = _element(image, [pose], boxes=[[25, 15, 65, 45]], ignore=ignore)
    out = _np(augment.crop_and_resize(ex, [20.0, 10.0, 60.0, 50.0], 80))    # scale 2
    np.testing.assert_allclose(out[batch_keys.BOXES], [[10, 10, 90, 70]])           # the pose box is not clipped
    np.testing.assert_allclose(out[batch_keys.IGNORE_BOXES], [[10, 10, 80, 70], [70, 70, 80, 80]])
    flipped = _np(augment.flip_horizontal(augment.crop_and_resize(ex, [20.0, 10.0, 60.0, 50.0], 80)))
    np.testing.assert_allclose(flipped[batch_keys.IGNORE_BOXES], [[0, 10, 70, 70], [0, 70, 10, 80]])   # x1 < x2
    np.testing.assert_allclose(flipped[batch_keys.BOXES], [[-10, 10, 70, 70]])
    # Without ignore boxes in the element, none appear.
    assert batch_keys.IGNORE_BOXES not in augment.letterbox(_element(image, [pose]), 32)


def test_letterbox_keeps_aspect_and_marks_joints_in_the_padding_not_visible():
    image = np.full((50, 100, 3), 200, np.uint8)
    pose = _pose_at([[10, 40], [90, 60]])            # (90, 60) lies below the image (completed joint)
    out = _np(augment.letterbox(_element(image, [pose], intrinsics=(100, 100, 50, 25)), 64, pad_value=7.0))
    s = 64 / 100
    np.testing.assert_allclose(out[batch_keys.POSE2D][0, :2], [[10 * s, 40 * s], [90 * s, 60 * s]], rtol=1e-6)
    np.testing.assert_array_equal(out[batch_keys.VISIBLE][0], np.arange(J) % 2 == 0)
    np.testing.assert_allclose(out[batch_keys.INTRINSICS], [100 * s, 100 * s, 50 * s, 25 * s], rtol=1e-6)
    img = out[batch_keys.IMAGE]
    # Content: rows [0, 32) (50 * 0.64); padding below; a row straddling the border mixes both.
    np.testing.assert_allclose(img[:31], 200, atol=1e-3)
    np.testing.assert_allclose(img[33:], 7.0)


def _dot_image(h, w, centre, half=4):
    """Black image with a white square of side 2*half centred on continuous point ``centre``."""
    img = np.zeros((h, w, 3), np.uint8)
    x, y = int(round(centre[0])), int(round(centre[1]))
    img[y - half:y + half, x - half:x + half] = 255
    return img


def _bright_centroid(img):
    """Intensity-weighted centroid of the image in continuous pixel coordinates (centres at +0.5)."""
    w = np.asarray(img, np.float64).mean(-1)
    ys, xs = np.mgrid[:w.shape[0], :w.shape[1]]
    return np.array([(w * (xs + 0.5)).sum(), (w * (ys + 0.5)).sum()]) / w.sum()


@pytest.mark.parametrize("window", [[40.0, 10.0, 100.0, 70.0],       # 2x zoom-in
                                    [-60.0, -80.0, 240.0, 220.0],    # 0.4x zoom-out, padded
                                    [0.0, 0.0, 160.0, 160.0]])        # letterbox
def test_image_content_moves_with_the_joint_through_crop_and_flip(window):
    centre = (70.0, 40.0)
    image = _dot_image(120, 160, centre, half=6)
    ex = _element(image, [_pose_at([centre])])
    out = augment.crop_and_resize(ex, window, 120)
    expected = out[batch_keys.POSE2D].numpy()[0, 0]
    np.testing.assert_allclose(_bright_centroid(out[batch_keys.IMAGE].numpy()), expected, atol=0.3)
    col, row = np.floor(expected).astype(int)
    assert out[batch_keys.IMAGE].numpy()[row, col].min() > 200
    flipped = augment.flip_horizontal(out)
    moved = flipped[batch_keys.POSE2D].numpy()[0, 0]
    np.testing.assert_allclose(moved, [120 - expected[0], expected[1]], rtol=1e-6)
    np.testing.assert_allclose(_bright_centroid(flipped[batch_keys.IMAGE].numpy()), moved, atol=0.3)


def test_random_crops_and_flips_keep_image_and_joint_together():
    centre = (50.0, 30.0)
    image = _dot_image(90, 130, centre, half=5)
    ex = _element(image, [_pose_at([centre])], boxes=[[20, 10, 80, 60]])
    for i in range(6):
        seed = tf.constant([i, 17], tf.int64)
        out = augment.random_scale_crop(ex, seed, 96, (0.6, 2.5))
        out = augment.random_flip(out, augment.substream(seed, 9), 0.5)
        joint = out[batch_keys.POSE2D].numpy()[0, 0]
        np.testing.assert_allclose(_bright_centroid(out[batch_keys.IMAGE].numpy()), joint, atol=0.3)
        # The transform field maps the original point to the same place.
        sx, sy, tx, ty = out[batch_keys.TRANSFORM].numpy()
        np.testing.assert_allclose([sx * centre[0] + tx, sy * centre[1] + ty], joint, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(out[batch_keys.INTRINSICS].numpy(), np.zeros(4))   # unknown stays unknown


def test_one_flip_swaps_right_and_left_and_mirrors_by_hand():
    w = 100
    image = np.zeros((60, w, 3), np.uint8)
    image[:, 0] = [255, 0, 0]                                      # column 0 red
    pose = np.tile(np.float32([[50, 30]]), (J, 1))
    rw, lw = LCR.index("right_wrist"), LCR.index("left_wrist")
    pose[rw] = [10.0, 20.0]
    pose[lw] = [70.0, 25.0]
    pose3d = np.zeros((1, J, 3), np.float32)
    pose3d[0, rw] = [0.3, -0.1, 0.2]
    visible = np.ones((1, J), bool)
    visible[0, rw] = False
    ex = _element(image, [pose], boxes=[[10, 5, 40, 50]], pose3d=pose3d, visible=visible,
                  intrinsics=(400, 410, 30, 28))
    out = _np(augment.flip_horizontal(ex))
    np.testing.assert_allclose(out[batch_keys.POSE2D][0, lw], [90.0, 20.0])   # the right wrist, mirrored, now
    np.testing.assert_allclose(out[batch_keys.POSE2D][0, rw], [30.0, 25.0])   # labelled left, and vice versa
    np.testing.assert_allclose(out[batch_keys.POSE3D][0, lw], [-0.3, -0.1, 0.2])
    np.testing.assert_allclose(out[batch_keys.POSE3D][0, rw], [0.0, 0.0, 0.0])
    assert not out[batch_keys.VISIBLE][0, lw] and out[batch_keys.VISIBLE][0, rw]
    head = LCR.index("head")
    np.testing.assert_allclose(out[batch_keys.POSE2D][0, head], [50.0, 30.0])  # centre joint stays in place
    np.testing.assert_allclose(out[batch_keys.BOXES][0], [60, 5, 90, 50])
    np.testing.assert_allclose(out[batch_keys.INTRINSICS], [400, 410, 70, 28])
    np.testing.assert_allclose(out[batch_keys.TRANSFORM], [-1, 1, 100, 0])
    np.testing.assert_array_equal(out[batch_keys.IMAGE][:, w - 1], np.tile([255, 0, 0], (60, 1)))
    assert out[batch_keys.IMAGE][:, :w - 1].max() == 0
    np.testing.assert_array_equal(out[batch_keys.ANCHOR_CLASS], [-1])          # no anchors: to be assigned


def test_flipping_twice_is_the_identity():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    ex = _element(image, rng.uniform(0, 40, (3, J, 2)), visible=rng.random((3, J)) < 0.5,
                  annotated=rng.random((3, J)) < 0.5, intrinsics=(300, 300, 17.5, 12))
    ex[batch_keys.COMPLETED] = tf.constant(rng.random((3, J)) < 0.5)
    twice = _np(augment.flip_horizontal(augment.flip_horizontal(ex)))
    once = _np(augment.flip_horizontal(ex))
    for key, value in _np(ex).items():
        if key == batch_keys.ANCHOR_CLASS:
            continue
        if np.asarray(value).dtype.kind == "f":
            np.testing.assert_allclose(twice[key], value, rtol=1e-6, atol=1e-5, err_msg=key)
        else:
            np.testing.assert_array_equal(twice[key], value, err_msg=key)
    assert not np.array_equal(once[batch_keys.VISIBLE], _np(ex)[batch_keys.VISIBLE])


@pytest.fixture(scope="module")
def anchor_set():
    corpus = body_model.sample_poses(200, seed=4)
    return anchors_lib.from_centres(corpus.poses3d[::10])          # K = 20


def test_flip_reassigns_anchor_classes_like_assign_classes(anchor_set):
    poses3d = body_model.sample_poses(60, seed=9).poses3d
    rng = np.random.default_rng(1)
    annotated = rng.random((60, J)) < 0.7
    annotated[:20, LCR.lower_body] = False                         # a third of them upper-body only
    ex = _element(np.zeros((20, 30, 3), np.uint8), rng.uniform(0, 20, (60, J, 2)), pose3d=poses3d,
                  annotated=annotated)
    out = augment.flip_horizontal(ex, augment.full_body_anchor_poses(anchor_set))
    flipped3d = poses3d[:, LCR.flip_permutation] * np.float32([-1, 1, 1])
    full_body = annotated[:, LCR.lower_body].any(1)
    expected = anchor_set.assign_classes(flipped3d, full_body)
    np.testing.assert_array_equal(out[batch_keys.ANCHOR_CLASS].numpy(), expected)
    assert (expected > anchor_set.num_anchors).sum() >= 20
    # Mirroring changes the nearest anchor of most poses: the re-assignment is not a no-op.
    unflipped = anchor_set.assign_classes(poses3d, full_body)
    assert (unflipped != expected).mean() > 0.5
    # The TF nearest-anchor on the unflipped poses agrees with NumPy too.
    np.testing.assert_array_equal(
        augment.anchor_classes(poses3d, annotated, anchor_set.pose3d[:anchor_set.num_anchors]).numpy(),
        unflipped)


def test_anchors_of_another_skeleton_are_refused():
    other = anchors_lib.from_centres(np.random.default_rng(0).normal(0, 0.3, (3, 17, 3)), skeleton="h36m17")
    with pytest.raises(ValueError, match="h36m17"):
        augment.full_body_anchor_poses(other)


def test_random_window_holds_a_whole_person_and_follows_the_zoom():
    image = np.zeros((100, 200, 3), np.uint8)
    boxes = np.float32([[10, 20, 40, 90], [150, 30, 190, 60]])
    ex = _element(image, np.zeros((2, J, 2)), boxes=boxes)
    seen = set()
    for i in range(40):
        w = augment.random_window(ex, tf.constant([i, 0]), (1.5, 3.0)).numpy()
        side = w[2] - w[0]
        assert w[3] - w[1] == pytest.approx(side)
        assert 200 / 3.0 - 1e-3 <= side <= max(200 / 1.5, 70) + 1e-3
        holds = (w[:2] <= boxes[:, :2] + 1e-4).all(1) & (w[2:] >= boxes[:, 2:] - 1e-4).all(1)
        assert holds.any()
        seen.add(int(np.argmax(holds)))
        # The window lies inside the image when it is smaller than the image in that direction.
        if side <= 200:
            assert -1e-4 <= w[0] and w[2] <= 200 + 1e-4
    assert seen == {0, 1}                                        # both people get chosen
    # A fixed zoom that the 70 px tall person cannot fit in is lowered to the box: side 70, not 50.
    single = _element(image, np.zeros((1, J, 2)), boxes=boxes[:1])
    w = augment.random_window(single, tf.constant([1, 2]), (4.0, 4.0)).numpy()
    assert w[2] - w[0] == pytest.approx(70.0) and w[1] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="scale_range"):
        augment.random_window(single, tf.constant([1, 2]), (2.0, 1.0))


def test_random_window_without_people_covers_the_image_in_the_scale_range():
    image = np.zeros((60, 90, 3), np.uint8)
    ex = _element(image, np.zeros((0, J, 2)), ignore=[[10, 10, 30, 30]])
    zoom_in = zoom_out = 0
    for i in range(40):
        w = augment.random_window(ex, tf.constant([i, 3]), (0.5, 2.0)).numpy()
        side = w[2] - w[0]
        assert w[3] - w[1] == pytest.approx(side) and 90 / 2.0 - 1e-3 <= side <= 90 / 0.5 + 1e-3
        for lo, hi, extent in ((w[0], w[2], 90), (w[1], w[3], 60)):
            if side <= extent:                       # inside the image
                assert -1e-4 <= lo and hi <= extent + 1e-4
            else:                                    # around it
                assert lo <= 1e-4 and hi >= extent - 1e-4
        zoom_in += side < 60
        zoom_out += side > 90
    assert zoom_in > 3 and zoom_out > 3
    out = _np(augment.random_flip(augment.random_scale_crop(ex, tf.constant([0, 1]), 32, (0.5, 2.0)),
                                  tf.constant([0, 2]), 1.0))
    assert out[batch_keys.POSE2D].shape == (0, J, 2) and out[batch_keys.IMAGE].shape == (32, 32, 3)
    assert int(out[batch_keys.NUM_PEOPLE_OUTSIDE]) == 0


def test_anchor_classes_of_no_person(anchor_set):
    got = augment.anchor_classes(tf.zeros([0, J, 3]), tf.zeros([0, J], tf.bool),
                                 augment.full_body_anchor_poses(anchor_set))
    assert got.shape == (0,) and got.dtype == tf.int32


def test_random_ops_are_seeded():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    ex = _element(image, rng.uniform(10, 60, (2, J, 2)))
    a = _np(augment.random_scale_crop(ex, tf.constant([3, 4]), 48, (0.5, 2.0)))
    b = _np(augment.random_scale_crop(ex, tf.constant([3, 4]), 48, (0.5, 2.0)))
    c = _np(augment.random_scale_crop(ex, tf.constant([3, 5]), 48, (0.5, 2.0)))
    np.testing.assert_array_equal(a[batch_keys.IMAGE], b[batch_keys.IMAGE])
    assert not np.array_equal(a[batch_keys.TRANSFORM], c[batch_keys.TRANSFORM])
    flips = [float(augment.random_flip(ex, tf.constant([i, 1]), 0.5)[batch_keys.TRANSFORM][0]) for i in range(40)]
    assert 5 < flips.count(-1.0) < 35
    always = [float(augment.random_flip(ex, tf.constant([i, 1]), 1.0)[batch_keys.TRANSFORM][0]) for i in range(3)]
    assert always == [-1.0] * 3
    assert augment.random_flip(ex, tf.constant([0, 1]), 0.0) is ex


def test_photometric_jitter_range_and_seeding():
    rng = np.random.default_rng(2)
    image = tf.constant(rng.uniform(0, 255, (16, 16, 3)), tf.float32)
    args = dict(brightness=0.2, contrast=(0.5, 1.5), saturation=(0.5, 1.5), hue=0.1)
    a = augment.photometric_jitter(image, tf.constant([1, 2]), **args).numpy()
    b = augment.photometric_jitter(image, tf.constant([1, 2]), **args).numpy()
    c = augment.photometric_jitter(image, tf.constant([1, 3]), **args).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.min() >= 0.0 and a.max() <= 255.0
    np.testing.assert_allclose(augment.photometric_jitter(image, tf.constant([1, 2])).numpy(), image.numpy(),
                               atol=1e-4)
    # Brightness alone adds one constant to every pixel (mid-grey image: nothing clips).
    grey = tf.constant(rng.uniform(100, 150, (8, 8, 3)), tf.float32)
    shift = augment.photometric_jitter(grey, tf.constant([4, 4]), brightness=0.1).numpy() - grey.numpy()
    assert np.ptp(shift) < 1e-3 and 0 < abs(shift.flat[0]) <= 25.5 + 1e-3


def test_augmentations_trace_in_a_graph(anchor_set):
    rng = np.random.default_rng(6)
    ex = _element(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8), rng.uniform(5, 45, (2, J, 2)),
                  pose3d=body_model.sample_poses(2, seed=1).poses3d)
    anchor3d = augment.full_body_anchor_poses(anchor_set)

    @tf.function
    def run(e, seed):
        e = augment.random_scale_crop(e, seed, 32, (0.8, 1.2))
        e = augment.random_flip(e, augment.substream(seed, 1), 1.0, anchor3d)
        e[batch_keys.IMAGE] = augment.photometric_jitter(e[batch_keys.IMAGE], seed, 0.1, (0.9, 1.1), (0.9, 1.1), 0.02)
        return e

    out = run(ex, tf.constant([0, 1], tf.int64))
    assert out[batch_keys.IMAGE].shape == (32, 32, 3)
    assert (out[batch_keys.ANCHOR_CLASS].numpy() >= 1).all()
    with pytest.raises(ValueError, match="output_size"):
        augment.crop_and_resize(ex, [0.0, 0.0, 10.0, 10.0], 1)
