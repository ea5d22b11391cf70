"""The ``synthetic`` dataset: images rendered on the fly by :mod:`lcr_tf.synthetic`.

Keys are ``0 .. num_images - 1``; ``read(i)`` renders image ``i`` of ``seed`` (the same key and seed always
give the same image), encodes it as JPEG and returns its people with exact annotations: every joint's 2D
position (the renderer knows all joints, so all are annotated, including those outside the image or
hidden), the renderer's visibility (inside the image and not occluded), the exact 3D pose (metres,
camera axes, body-centred; the job keeps it as MoCap 3D) and the camera intrinsics. With
``empty_fraction`` > 0 a share of the images holds nobody (:func:`lcr_tf.synthetic.empty_scenes`
says which); their records are marked :attr:`~lcr_tf.datasets.base.ImageRecord.negative`, and the job
writes them with P = 0.

The people's 3D poses are drawn from ``poses`` (a ``poses.npz`` corpus in LCR-13) or, without it, from
``body_model_poses`` poses of :func:`lcr_tf.poses.body_model.sample_poses` with ``seed``. The corpus is loaded
once per worker process, on first use.

Pixels: the renderer writes its labels and intrinsics in the package's convention
(:mod:`lcr_tf.contracts.geometry`), so the reader passes them on unchanged (:data:`PIXEL_OFFSET`).
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np

from lcr_tf import synthetic
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.datasets.base import DatasetReader, ImageRecord, Person
from lcr_tf.datasets.corpus import load_corpus_poses

# Added to the renderer's 2D labels: none, they already follow lcr_tf.contracts.geometry (the renderer
# draws each point at its label - 0.5, OpenCV's integer coordinates being pixel centres).
PIXEL_OFFSET = 0.0


class SyntheticReader(DatasetReader):
    """Rendered multi-person images with exact 2D and 3D.

    Args:
      num_images: number of images (keys ``0 .. num_images - 1``).
      seed: the render seed.
      poses: ``poses.npz`` (LCR-13) to draw people from; None for the body model.
      body_model_poses: corpus size when ``poses`` is None (None: the job's default,
        :data:`lcr_tf.datasets.corpus.DEFAULT_BODY_MODEL_POSES`).
      height, width: image size in pixels.
      min_people, max_people: people per image (None: the preset's).
      preset: scene distribution, a name of :data:`lcr_tf.synthetic.PRESETS`.
      jpeg_quality: JPEG quality (1..100).
      empty_fraction: share of the images rendered without people, in [0, 1]
        (:attr:`lcr_tf.synthetic.RenderConfig.empty_fraction`).
    """

    name = "synthetic"
    skeleton = skeleton_lib.LCR13.name

    def __init__(self, num_images: int, seed: int = 0, poses: Optional[str] = None,
                 body_model_poses: Optional[int] = None, height: int = 256, width: int = 256,
                 min_people: Optional[int] = None, max_people: Optional[int] = None, jpeg_quality: int = 90,
                 preset: str = "wild", empty_fraction: float = 0.0):
        super().__init__()
        if preset not in synthetic.PRESETS:
            raise ValueError(f"synthetic: unknown preset {preset!r}; known: "
                             f"{', '.join(sorted(synthetic.PRESETS))}")
        defaults = synthetic.preset_config(preset)
        min_people = defaults.min_people if min_people is None else min_people
        max_people = defaults.max_people if max_people is None else max_people
        for label, value, lo in (("num_images", num_images, 1), ("body_model_poses", body_model_poses or 1, 1),
                                 ("height", height, 16), ("width", width, 16), ("min_people", min_people, 1),
                                 ("jpeg_quality", jpeg_quality, 1), ("seed", seed, 0)):
            if int(value) != value or value < lo:
                raise ValueError(f"synthetic: {label} must be an integer >= {lo}, got {value!r}")
        if max_people < min_people:
            raise ValueError(f"synthetic: max_people={max_people} is below min_people={min_people}")
        if jpeg_quality > 100:
            raise ValueError(f"synthetic: jpeg_quality must be at most 100, got {jpeg_quality}")
        if not 0.0 <= float(empty_fraction) <= 1.0:
            raise ValueError(f"synthetic: empty_fraction must be in [0, 1], got {empty_fraction!r}")
        self.num_images = int(num_images)
        self.seed = int(seed)
        self.poses = poses
        self.body_model_poses = None if body_model_poses is None else int(body_model_poses)
        self.height = int(height)
        self.width = int(width)
        self.min_people = int(min_people)
        self.max_people = int(max_people)
        self.jpeg_quality = int(jpeg_quality)
        self.preset = preset
        self.empty_fraction = float(empty_fraction)

    def list_items(self) -> List[int]:
        return list(range(self.num_images))

    def key_name(self, key) -> str:
        return self.image_id(key)

    def image_id(self, index: int) -> str:
        """The id of image ``index``: unique across seeds."""
        return f"s{self.seed}_{int(index):07d}"

    def corpus(self) -> np.ndarray:
        """(N, 13, 3) float32 metres, camera axes, body-centred: the poses people are drawn from."""
        return self.cached("corpus", lambda: load_corpus_poses(self.poses, self.body_model_poses, self.seed))

    def render_config(self):
        return synthetic.preset_config(self.preset, height=self.height, width=self.width,
                                       min_people=self.min_people, max_people=self.max_people,
                                       empty_fraction=self.empty_fraction)

    def setup(self) -> None:
        self.corpus()

    def render(self, index: int):
        """The renderer's :class:`~lcr_tf.synthetic.RenderedImage` of image ``index``."""
        config = self.cached("config", self.render_config)
        return synthetic.render_image(self.corpus(), int(index), self.seed, config)

    def read(self, key) -> ImageRecord:
        rendered = self.render(key)
        data = synthetic.encode_image(rendered.image, fmt="jpeg", quality=self.jpeg_quality)
        num_joints = skeleton_lib.LCR13.num_joints
        people = [Person(pose2d=np.asarray(rendered.pose2d[p], np.float32) + np.float32(PIXEL_OFFSET),
                         annotated=np.ones(num_joints, bool),
                         visible=np.asarray(rendered.visible[p], bool),
                         pose3d=np.asarray(rendered.pose3d[p], np.float32),
                         person_id=str(p))
                  for p in range(rendered.pose2d.shape[0])]
        height, width = rendered.image.shape[:2]
        return ImageRecord(image_id=self.image_id(key), dataset=self.name, skeleton=self.skeleton,
                           people=people, image_bytes=data, height=int(height), width=int(width),
                           intrinsics=np.asarray(rendered.intrinsics, np.float32), negative=not people,
                           metadata={"index": int(key), "seed": self.seed})
