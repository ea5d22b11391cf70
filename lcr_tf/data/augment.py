"""Training augmentation of one pipeline element: scale and crop, horizontal flip, photometric jitter.

Every function takes and returns the element dict of :mod:`lcr_tf.data.decoder` (one image, P people),
is written with TensorFlow ops only (it runs inside ``tf.data`` graphs) and draws its random numbers with
stateless ops from an explicit ``seed``: a (2,) int32/int64 tensor. The same seed gives the same output,
so the pipeline is reproducible when it derives the seeds from a user seed.

Geometry conventions (see :mod:`lcr_tf.data.decoder`): continuous pixel coordinates, pixel ``(i, j)``
covers ``[i, i + 1) x [j, j + 1)`` and its centre is ``(i + 0.5, j + 0.5)``; an image of width W spans
``[0, W]``. In these coordinates a horizontal flip is exactly ``x -> W - x`` (pixel column ``i`` goes to
``W - 1 - i``, its centre ``i + 0.5`` to ``W - (i + 0.5)``), and resampling a window
``[x1, x2] x [y1, y2]`` of the image onto S x S pixels is exactly ``x -> (x - x1) * S / (x2 - x1)``.

Scale, crop and resize are one operation, :func:`crop_and_resize`: a window of the source image (it may
reach beyond the image, which is then padded with ``pad_value``) is resampled onto the S x S output. It
serves both modes:

* training, :func:`random_scale_crop`: a random square window whose side is ``max(H, W) / s`` for a zoom
  ``s`` drawn log-uniformly in ``scale_range``, placed so that it holds the whole pose box of one person
  chosen at random (the zoom is lowered for that image if the box would not fit), and, where that leaves
  room, so that it covers as much of the image as possible; in an image without people, anywhere that
  covers as much of the image as possible (inside it when zooming in, around it when zooming out);
* evaluation, :func:`letterbox`: the square window ``[0, L] x [0, L]``, L = max(H, W): the image keeps
  its aspect ratio, touches the top-left corner, and is padded at the bottom or right.

Downscaling first resizes the whole image with an antialiasing filter to about the final scale (so thin
limbs do not alias away), then resamples the window bilinearly; the coordinate mapping is exact either
way.

After a crop, a joint outside the image content (outside the window or in the padding) is no longer
``visible``; it keeps its coordinates (now outside ``[0, S]`` or in the padding) and its ``annotated``
and ``completed`` flags. A person with no joint at all inside the image content is dropped; the number
dropped is kept in :data:`NUM_PEOPLE_OUTSIDE`. Boxes are mapped with the image and are *not* clipped
to it: they stay the pose box of all joints, as in the records. Crops leave the anchor class alone: a
person whose legs are cut off keeps a full-body class, since its annotation still holds the legs.

Ignore regions (``ignore_boxes``, optional in the element) go through every geometric step exactly as
the pose boxes do (:func:`_affine`: crop, resize, letterbox, flip, with x1 <= x2 kept after a mirror).
Unlike pose boxes, a crop clips them to the output image ``[0, S] x [0, S]`` and drops those left with
no area: a region only matters where a detection can be.

The pipeline crops first and flips the S x S result, the cheaper order; both orders give the same
element, as the flip commutes with the crop up to the mirrored window.
"""

from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import tensorflow as tf

from lcr_tf.contracts import batch_keys, features
from lcr_tf.contracts import skeleton as skeleton_lib

# Independent random streams within the seed of one step (the pipeline gives each step its own seed):
# the draws of random_window, then those of photometric_jitter.
_STREAM_SCALE, _STREAM_PERSON, _STREAM_X, _STREAM_Y = 0, 1, 2, 3
_STREAM_BRIGHTNESS, _STREAM_CONTRAST, _STREAM_SATURATION, _STREAM_HUE = 0, 1, 2, 3


def substream(seed, index: int):
    """A (2,) int64 seed for the ``index``-th independent random stream of ``seed`` ((2,) int)."""
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), index)


def _uniform(seed, stream: int, minval=0.0, maxval=1.0):
    return tf.random.stateless_uniform([], substream(seed, stream), minval=minval, maxval=maxval,
                                       dtype=tf.float32)


def _map_people(example: Dict[str, tf.Tensor], fn) -> Dict[str, tf.Tensor]:
    out = dict(example)
    for key in batch_keys.PERSON_KEYS:
        out[key] = fn(example[key])
    return out


def _map_boxes(box, sx, tx, sy, ty) -> tf.Tensor:
    """(N, 4) xyxy -> (N, 4) xyxy under ``x -> sx x + tx``, ``y -> sy y + ty`` (sy > 0), re-ordered so
    that x1 <= x2 when sx < 0."""
    x_a, x_b = box[:, 0] * sx + tx, box[:, 2] * sx + tx
    return tf.stack([tf.minimum(x_a, x_b), box[:, 1] * sy + ty, tf.maximum(x_a, x_b), box[:, 3] * sy + ty],
                    axis=-1)


def _affine(example: Dict[str, tf.Tensor], sx, tx, sy, ty) -> Dict[str, tf.Tensor]:
    """Moves the annotations by ``x -> sx x + tx``, ``y -> sy y + ty`` (sx may be negative: a mirror;
    sy > 0). Updates pose2d, boxes and ignore boxes (both re-ordered so x1 <= x2), intrinsics and the
    transform; not the image.
    """
    out = dict(example)
    scale = tf.stack([sx, sy])
    offset = tf.stack([tx, ty])
    out[batch_keys.POSE2D] = example[batch_keys.POSE2D] * scale + offset
    out[batch_keys.BOXES] = _map_boxes(example[batch_keys.BOXES], sx, tx, sy, ty)
    if batch_keys.IGNORE_BOXES in example:
        out[batch_keys.IGNORE_BOXES] = _map_boxes(example[batch_keys.IGNORE_BOXES], sx, tx, sy, ty)
    # u = fx X / Z + cx: scaling the image scales fx and moves cx; mirroring also negates X, which the
    # caller does to pose3d, so fx keeps its sign and only cx is mirrored.
    k = example[batch_keys.INTRINSICS]
    known = tf.reduce_any(tf.not_equal(k, 0.0))
    moved = tf.stack([k[0] * tf.abs(sx), k[1] * sy, k[2] * sx + tx, k[3] * sy + ty])
    out[batch_keys.INTRINSICS] = tf.where(known, moved, k)
    t = example[batch_keys.TRANSFORM]
    out[batch_keys.TRANSFORM] = tf.stack([t[0] * sx, t[1] * sy, t[2] * sx + tx, t[3] * sy + ty])
    return out


def letterbox_window(image_size) -> tf.Tensor:
    """(2,) [H, W] -> (4,) float32 window xyxy: the square ``[0, L] x [0, L]``, L = max(H, W)."""
    size = tf.cast(image_size, tf.float32)
    side = tf.reduce_max(size)
    return tf.stack([0.0, 0.0, side, side])


def random_window(example: Dict[str, tf.Tensor], seed, scale_range: Tuple[float, float]) -> tf.Tensor:
    """A random square crop window that holds the pose box of one randomly chosen person.

    Args:
      example: element with ``image`` (H, W, 3) and ``boxes`` (P, 4) xyxy pixels of that image.
      seed: (2,) int stateless seed.
      scale_range: (lo, hi), 0 < lo <= hi: the zoom ``s`` is log-uniform in it; the window side is
        ``max(H, W) / s`` (s = 1: the whole image fits, as in :func:`letterbox`; s = 2: a 2x zoom-in;
        s = 0.5: the image fills half of the output), raised to the chosen box's width and height.
        With P = 0 there is no box: the side is ``max(H, W) / s`` and the window is placed uniformly
        where it covers as much of the image as it can (inside the image along an axis where it is
        smaller than the image, around it where it is larger).
    Returns:
      (4,) float32 window xyxy in pixels of the image; it may extend beyond the image.
    """
    lo, hi = float(scale_range[0]), float(scale_range[1])
    if not 0.0 < lo <= hi:
        raise ValueError(f"scale_range must satisfy 0 < lo <= hi, got {scale_range}")
    size = tf.cast(tf.shape(example[batch_keys.IMAGE])[:2], tf.float32)
    height, width = size[0], size[1]
    zoom = tf.exp(_uniform(seed, _STREAM_SCALE, math.log(lo), math.log(hi)))
    side = tf.maximum(height, width) / zoom

    boxes = example[batch_keys.BOXES]
    num = tf.shape(boxes)[0]
    has_person = num > 0
    pick = tf.random.stateless_uniform([], substream(seed, _STREAM_PERSON), minval=0,
                                       maxval=tf.maximum(num, 1), dtype=tf.int32)
    # Without people there is no box to keep in view: a zero box neither raises the side nor constrains
    # the placement.
    box = tf.cond(has_person, lambda: boxes[tf.minimum(pick, num - 1)], lambda: tf.zeros([4]))
    side = tf.maximum(side, tf.maximum(box[2] - box[0], box[3] - box[1]))

    def place(b1, b2, extent, stream):
        # Window start x1 such that [x1, x1 + side] holds [b1, b2] ...
        lo_person, hi_person = b2 - side, b1
        # ... and, if possible, covers the image as much as it can: inside the image when side <= extent,
        # around it otherwise.
        lo_image, hi_image = tf.minimum(0.0, extent - side), tf.maximum(0.0, extent - side)
        lo_both, hi_both = tf.maximum(lo_person, lo_image), tf.minimum(hi_person, hi_image)
        both = lo_both <= hi_both
        lo_x = tf.where(has_person, tf.where(both, lo_both, lo_person), lo_image)
        hi_x = tf.where(has_person, tf.where(both, hi_both, hi_person), hi_image)
        return lo_x + _uniform(seed, stream) * (hi_x - lo_x)

    x1 = place(box[0], box[2], width, _STREAM_X)
    y1 = place(box[1], box[3], height, _STREAM_Y)
    return tf.stack([x1, y1, x1 + side, y1 + side])


def crop_and_resize(example: Dict[str, tf.Tensor], window, output_size: int, pad_value: float = 0.0
                    ) -> Dict[str, tf.Tensor]:
    """Resamples ``window`` of the image onto ``output_size`` x ``output_size`` pixels and moves the
    annotations with it.

    Args:
      example: element dict; ``image`` (H, W, 3) uint8 or float.
      window: (4,) xyxy pixels of the current image, x2 > x1, y2 > y1; it may reach beyond the image.
        A square window keeps the aspect ratio; ``[0, 0, W, H]`` is a plain (stretching) resize.
      output_size: S >= 2.
      pad_value: value of output pixels outside the image content.
    Returns:
      The element with ``image`` (S, S, 3) float32 in the input's range, points mapped by
      ``x -> (x - x1) * S / (x2 - x1)`` (same for y), intrinsics and transform composed, ``visible``
      cleared for joints outside the image content, people without any joint inside dropped, ignore
      boxes (when the element has them) mapped, clipped to ``[0, S] x [0, S]`` and dropped when left
      without area, and :data:`NUM_PEOPLE_OUTSIDE` set (() int32).
    """
    if output_size < 2:
        raise ValueError(f"output_size must be >= 2, got {output_size}")
    s = float(output_size)
    window = tf.cast(window, tf.float32)
    image = example[batch_keys.IMAGE]
    size = tf.shape(image)[:2]
    height, width = tf.cast(size[0], tf.float32), tf.cast(size[1], tf.float32)
    sx = s / (window[2] - window[0])
    sy = s / (window[3] - window[1])

    # Downscaling: first an antialiased resize of the whole image to about the final scale. The resize
    # maps continuous coordinates exactly by new / old size per axis, which the window follows.
    shrink = tf.minimum(sx, sy) < 1.0
    new_size = tf.maximum(tf.cast(tf.round(tf.cast(size, tf.float32) * tf.stack([sy, sx])), tf.int32), 1)
    source = tf.cond(shrink,
                     lambda: tf.image.resize(image, new_size, method="bilinear", antialias=True),
                     lambda: tf.cast(image, tf.float32))
    src_size = tf.cast(tf.shape(source)[:2], tf.float32)
    fy, fx = src_size[0] / height, src_size[1] / width
    wx1, wx2 = window[0] * fx, window[2] * fx
    wy1, wy2 = window[1] * fy, window[3] * fy
    # crop_and_resize samples output pixel i at source index a0 + i (a1 - a0) / (S - 1), with source
    # pixel centres at integer indices; output centre i + 0.5 must land on w1 + (i + 0.5) (w2 - w1) / S
    # in continuous coordinates, i.e. index w1 + (i + 0.5) (w2 - w1) / S - 0.5.
    def ends(w1, w2, extent):
        step = (w2 - w1) / s
        denom = tf.maximum(extent - 1.0, 1.0)
        return (w1 + 0.5 * step - 0.5) / denom, (w1 + (s - 0.5) * step - 0.5) / denom

    nx1, nx2 = ends(wx1, wx2, src_size[1])
    ny1, ny2 = ends(wy1, wy2, src_size[0])
    out_image = tf.image.crop_and_resize(source[None], tf.stack([[ny1, nx1, ny2, nx2]]), [0],
                                         [output_size, output_size], method="bilinear",
                                         extrapolation_value=pad_value)[0]

    tx, ty = -window[0] * sx, -window[1] * sy
    out = _affine(example, sx, tx, sy, ty)
    out[batch_keys.IMAGE] = out_image
    # Image content in output pixels: the mapped image intersected with the output frame.
    cx1, cy1 = tf.maximum(0.0, tx), tf.maximum(0.0, ty)
    cx2, cy2 = tf.minimum(s, width * sx + tx), tf.minimum(s, height * sy + ty)
    pts = out[batch_keys.POSE2D]
    inside = ((pts[..., 0] >= cx1) & (pts[..., 0] < cx2) & (pts[..., 1] >= cy1) & (pts[..., 1] < cy2))
    out[batch_keys.VISIBLE] = out[batch_keys.VISIBLE] & inside
    keep = tf.reduce_any(inside, axis=1)
    out = _map_people(out, lambda v: tf.boolean_mask(v, keep))
    if batch_keys.IGNORE_BOXES in out:
        out[batch_keys.IGNORE_BOXES] = clip_boxes(out[batch_keys.IGNORE_BOXES], output_size)
    previous = example.get(batch_keys.NUM_PEOPLE_OUTSIDE, tf.constant(0, tf.int32))
    out[batch_keys.NUM_PEOPLE_OUTSIDE] = previous + tf.reduce_sum(tf.cast(~keep, tf.int32))
    return out


def clip_boxes(boxes, image_size: int) -> tf.Tensor:
    """(N, 4) xyxy pixels -> (M, 4): clipped to the image ``[0, S] x [0, S]`` (S = ``image_size``),
    keeping the boxes left with an area (x1 < x2 and y1 < y2), in their order."""
    s = float(image_size)
    clipped = tf.clip_by_value(tf.cast(boxes, tf.float32), 0.0, s)
    kept = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return tf.boolean_mask(clipped, kept)


def letterbox(example: Dict[str, tf.Tensor], output_size: int, pad_value: float = 0.0
              ) -> Dict[str, tf.Tensor]:
    """Evaluation resize: keeps the aspect ratio, image at the top-left, padding bottom or right
    (:func:`crop_and_resize` of :func:`letterbox_window`)."""
    return crop_and_resize(example, letterbox_window(tf.shape(example[batch_keys.IMAGE])[:2]), output_size,
                           pad_value)


def random_scale_crop(example: Dict[str, tf.Tensor], seed, output_size: int,
                      scale_range: Tuple[float, float], pad_value: float = 0.0) -> Dict[str, tf.Tensor]:
    """Training scale and crop: :func:`crop_and_resize` of :func:`random_window`."""
    return crop_and_resize(example, random_window(example, seed, scale_range), output_size, pad_value)


def anchor_classes(pose3d, annotated, anchor_pose3d, skeleton=features.DEFAULT_SKELETON) -> tf.Tensor:
    """Nearest anchor-pose class of each person, in TensorFlow (the rule of
    :meth:`lcr_tf.poses.anchors.AnchorSet.assign_classes`).

    The distance is the squared Euclidean distance between flattened body-centred 3D poses (the poses
    are centred here). A person with any lower-body joint (knees, ankles) annotated gets the full-body
    class ``k + 1`` of its nearest anchor ``k``, otherwise the upper-body class ``K + k + 1``. This is
    the class ``lcr_tf.datasets.records.encode_item`` writes (``AnchorSet.assign_classes`` with
    full body = any lower-body joint annotated), computed the same way in float64; the records store
    the pose in float32, so only a pose within rounding of two anchors' tie could get another class.

    Args:
      pose3d: (P, J, 3) metres, camera axes, in the order of ``skeleton``.
      annotated: (P, J) bool.
      anchor_pose3d: (K, J, 3) the K full-body anchors' 3D poses (``AnchorSet.pose3d[:K]``).
      skeleton: the joint set (name or :class:`~lcr_tf.contracts.skeleton.Skeleton`): its body centre and
        lower body.
    Returns:
      (P,) int32 classes in 1..2K.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    anchor_pose3d = tf.convert_to_tensor(anchor_pose3d)
    k = tf.shape(anchor_pose3d)[0]
    # float64 like the NumPy reference, so that near-ties resolve the same way.
    poses = tf.cast(pose3d, tf.float64)
    centre = tf.reduce_mean(tf.gather(poses, skel.centre_joints, axis=1), axis=1, keepdims=True)
    flat = tf.reshape(poses - centre, [tf.shape(poses)[0], skel.num_joints * 3])
    anchors = tf.reshape(tf.cast(anchor_pose3d, tf.float64), [k, -1])
    # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; the first term does not change the argmin.
    score = tf.reduce_sum(anchors * anchors, axis=1)[None, :] - 2.0 * tf.matmul(flat, anchors,
                                                                                  transpose_b=True)
    nearest = tf.argmin(score, axis=1, output_type=tf.int32)
    full_body = tf.reduce_any(tf.gather(annotated, skel.lower_body, axis=1), axis=1)
    return tf.where(full_body, nearest + 1, nearest + k + 1)


def full_body_anchor_poses(anchors, skeleton=features.DEFAULT_SKELETON) -> tf.Tensor:
    """(K, J, 3) float32 constant of an :class:`lcr_tf.poses.anchors.AnchorSet`'s full-body 3D anchors.

    Raises ValueError if the anchors are not in ``skeleton``, the joint order of the records.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    if anchors.skeleton.name != skel.name:
        raise ValueError(f"the anchor set uses skeleton {anchors.skeleton.name!r}; the training records "
                         f"are in {skel.name!r}")
    return tf.constant(anchors.pose3d[:anchors.num_anchors], tf.float32)


def flip_horizontal(example: Dict[str, tf.Tensor], anchor_pose3d=None, skeleton=features.DEFAULT_SKELETON
                    ) -> Dict[str, tf.Tensor]:
    """Mirrors the element left-right.

    The image is reversed along x; 2D points go to ``x -> W - x`` (W the current image width); boxes to
    ``[W - x2, y1, W - x1, y2]``; 3D poses get ``X -> -X``; left and right joints swap places (the
    :attr:`~lcr_tf.contracts.skeleton.Skeleton.flip_permutation` of ``skeleton``, the element's joint set) in
    pose2d, pose3d and every per-joint
    mask, so a person's right wrist is still called right wrist; ignore boxes like the pose boxes;
    ``cx -> W - cx`` when intrinsics are known. The mirrored 3D pose has another nearest anchor, so
    the anchor class is re-assigned with :func:`anchor_classes` when ``anchor_pose3d`` ((K, J, 3), see
    :func:`full_body_anchor_poses`) is given; without it the class becomes -1, "to be assigned" by
    whoever holds the anchors (the input pipeline recomputes every class itself when it has anchors).
    """
    out = dict(example)
    width = tf.cast(tf.shape(example[batch_keys.IMAGE])[1], tf.float32)
    out = _affine(out, tf.constant(-1.0), width, tf.constant(1.0), tf.constant(0.0))
    out[batch_keys.IMAGE] = tf.reverse(example[batch_keys.IMAGE], axis=[1])
    skel = skeleton_lib.get_skeleton(skeleton)
    perm = skel.flip_permutation
    out[batch_keys.POSE2D] = tf.gather(out[batch_keys.POSE2D], perm, axis=1)
    for key in batch_keys.JOINT_MASK_KEYS:
        out[key] = tf.gather(example[key], perm, axis=1)
    out[batch_keys.POSE3D] = tf.gather(example[batch_keys.POSE3D], perm, axis=1) * tf.constant([-1.0, 1.0, 1.0])
    if anchor_pose3d is None:
        out[batch_keys.ANCHOR_CLASS] = tf.fill(tf.shape(example[batch_keys.ANCHOR_CLASS]), -1)
    else:
        out[batch_keys.ANCHOR_CLASS] = anchor_classes(out[batch_keys.POSE3D], out[batch_keys.ANNOTATED], anchor_pose3d,
                                                      skel)
    return out


def random_flip(example: Dict[str, tf.Tensor], seed, probability: float = 0.5, anchor_pose3d=None,
                skeleton=features.DEFAULT_SKELETON) -> Dict[str, tf.Tensor]:
    """:func:`flip_horizontal` with the given probability (stateless draw from ``seed``)."""
    if probability <= 0.0:
        return example
    flip = _uniform(seed, 0) < probability
    flipped = flip_horizontal(example, anchor_pose3d, skeleton)
    return tf.cond(flip, lambda: flipped, lambda: dict(example))


def photometric_jitter(image, seed, brightness: float = 0.0, contrast: Sequence[float] = (1.0, 1.0),
                       saturation: Sequence[float] = (1.0, 1.0), hue: float = 0.0) -> tf.Tensor:
    """Random brightness, contrast, saturation and hue (``tf.image`` stateless ops), in this order.

    Args:
      image: (H, W, 3) RGB in [0, 255] (any real dtype).
      seed: (2,) int stateless seed.
      brightness: maximum brightness shift, as a fraction of the range (0.1: +-25.5 grey levels).
      contrast, saturation: (lo, hi) factor ranges; (1, 1) leaves the property alone.
      hue: maximum hue shift, as a fraction of the colour circle (<= 0.5).
    Returns:
      (H, W, 3) float32 in [0, 255].
    """
    x = tf.cast(image, tf.float32) / 255.0
    if brightness > 0.0:
        x = tf.image.stateless_random_brightness(x, brightness, substream(seed, _STREAM_BRIGHTNESS))
    if tuple(contrast) != (1.0, 1.0):
        x = tf.image.stateless_random_contrast(x, contrast[0], contrast[1],
                                               substream(seed, _STREAM_CONTRAST))
    if tuple(saturation) != (1.0, 1.0):
        x = tf.image.stateless_random_saturation(tf.clip_by_value(x, 0.0, 1.0), saturation[0],
                                                 saturation[1], substream(seed, _STREAM_SATURATION))
    if hue > 0.0:
        x = tf.image.stateless_random_hue(tf.clip_by_value(x, 0.0, 1.0), hue, substream(seed, _STREAM_HUE))
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0
