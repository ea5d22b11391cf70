"""Synthetic multi-person images with exact 2D and 3D ground truth (paper Sec 4.1, Fig 8d).

The paper renders SMPL bodies driven by CMU MoCap poses to add multi-person training images. This module
stands in for that renderer without any external asset: each person is a shaded articulated body (tapered
capsules for the limbs, neck, hands and feet, spheres for the head and hair, convex hulls of elliptic
rings for the pelvis and chest) posed by a 3D pose of a corpus, seen through a pinhole camera over a
random textured background. Every image comes with exact ground truth.

Scene (:func:`~lcr_tf.synthetic.scene.render_image`, fully determined by ``(poses3d, index, seed, config)``)
-------------------------------------------------------------------------------------------------------
* A pinhole camera: ``fx = fy`` uniform in ``focal_range`` times ``max(height, width)``; the principal
  point near the image centre ``(W / 2, H / 2)``.
* Empty scenes: a share ``empty_fraction`` of the images holds nobody (background, blur and noise
  only), the pure negatives a detector must learn to leave alone. Image ``i`` is empty when
  ``floor((i + 1) f) > floor(i f)`` (:func:`empty_scenes`), so exactly ``floor(N f)`` of images
  ``0..N-1`` are empty, spread evenly, whatever the seed. The choice uses no random number: an image with
  people is the same pixel for pixel whatever ``empty_fraction``, and an empty image draws its camera and
  background from its own ``[seed, index]`` stream like any other.
* P people, P uniform in ``[min_people, max_people]``. Each takes a random corpus pose (re-centred on
  its body centre), a random turn about the vertical (camera y) axis, a small tilt and roll, and a body
  scale uniform in ``body_scale_range``.
* Its standing height on the image (estimated from the bone lengths, so a crouching person looks
  smaller) is log-uniform in ``person_height_range`` (fractions of the image height); that fixes the
  depth ``Z = f * stature / (fraction * height)``, never nearer than ``near_plane`` metres to any joint.
* Its projected body centre is placed so the whole person is in the frame, or, with probability
  ``truncation_prob``, so that a fraction (``truncation_range``) of its box lies beyond one border
  (the bottom one more often, as in photographs). Every person keeps at least ``min_joints_in_image``
  joints inside the image when the geometry allows.

Rendering (:func:`~lcr_tf.synthetic.rasteriser.render_people`)
--------------------------------------------------------------
Body parts of all people are drawn far to near (painter's algorithm on each part's mean depth) with
OpenCV's anti-aliased filled circles and convex polygons at 1/16 pixel precision. Each part is drawn as
nested layers, smaller, brighter and shifted towards the light, which reads as a rounded surface; parts
behind the person's centre are darker. Sizes are perspective-correct (radius in pixels = radius in metres
* f / Z). The same shapes, without anti-aliasing, are drawn into a part-index buffer, which gives the
person under every pixel (:attr:`RenderedImage.person_map`) and the joint visibility.

Ground truth and conventions
----------------------------
* 3D: metres, camera axes (x right, y down, z away). ``pose3d`` is body-centred
  (:func:`lcr_tf.contracts.skeleton.centre_poses`); ``pose3d_camera = pose3d + translation``.
* 2D: pixels, x right, y down, origin top-left, the package's continuous convention
  (:mod:`lcr_tf.contracts.geometry`): pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)``, its
  centre is ``(col + 0.5, row + 0.5)``, the image covers ``[0, W) x [0, H)``.
  ``pose2d = (fx X / Z + cx, fy Y / Z + cy)`` with the intrinsics in the same convention. OpenCV draws
  with integer coordinates at pixel centres, so the rasteriser draws every point at its label - 0.5.
* ``in_image``: the joint projects inside the image. ``visible``: in the image and the front-most surface
  at its pixel is one of the body parts the joint belongs to (e.g. the thigh or the pelvis for a hip),
  or nothing at all; a joint covered by another person, by a foreground object or by another part of its
  own body (an arm across the chest, the far hip in profile) is not visible.

Modules: :mod:`~lcr_tf.synthetic.presets` (:class:`RenderConfig`, :data:`PRESETS`),
:mod:`~lcr_tf.synthetic.appearance` (clothes, skin, build), :mod:`~lcr_tf.synthetic.bodies` (body parts
and their 3D geometry), :mod:`~lcr_tf.synthetic.rasteriser` (drawing, person map, visibility),
:mod:`~lcr_tf.synthetic.backgrounds`, :mod:`~lcr_tf.synthetic.scene` (camera, placement, one image),
:mod:`~lcr_tf.synthetic.writer` (encoding, ground-truth JSON, contact sheet, a set on disk). The Beam-free
command line is ``python -m beam_jobs.render_synthetic``.
"""

from lcr_tf.synthetic.appearance import Appearance, sample_appearance
from lcr_tf.synthetic.backgrounds import make_background
from lcr_tf.synthetic.bodies import JOINT_PARTS, PART_NAMES, standing_height
from lcr_tf.synthetic.presets import BACKGROUND_KINDS, NUM_JOINTS, PRESETS, SKELETON, RenderConfig, preset_config
from lcr_tf.synthetic.rasteriser import RenderedImage, render_people
from lcr_tf.synthetic.scene import empty_scenes, render_image
from lcr_tf.synthetic.writer import (
                                     IMAGE_FORMATS,
                                     encode_image,
                                     ground_truth_record,
                                     render_dataset,
                                     write_contact_sheet,
)

__all__ = ["Appearance", "BACKGROUND_KINDS", "IMAGE_FORMATS", "JOINT_PARTS", "NUM_JOINTS", "PART_NAMES", "PRESETS",
           "RenderConfig", "RenderedImage", "SKELETON", "empty_scenes", "encode_image", "ground_truth_record",
           "make_background", "preset_config", "render_dataset", "render_image", "render_people",
           "sample_appearance", "standing_height", "write_contact_sheet"]
