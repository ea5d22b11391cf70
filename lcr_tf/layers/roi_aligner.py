"""RoIAlign as a Keras layer over batched, padded region lists (paper Sec 3.5)."""

from __future__ import annotations

import keras
import tensorflow as tf

from lcr_tf.ops import roi_align as roi_align_lib


@keras.saving.register_keras_serializable(package="lcr_tf")
class RoIAligner(keras.layers.Layer):
    """Pools a fixed S x S grid of features for each region of each image.

    Call: ``aligner(features, rois)`` with

    * ``features`` (B, H, W, C), the backbone feature map (H, W >= 2);
    * ``rois`` (B, R, 4) xyxy boxes in image pixels, R regions per image (padded lists are fine:
      padding boxes pool something harmless, mask their results downstream).

    Returns (B * R, S, S, C), S = ``output_size``: row ``b * R + r`` is region ``r`` of image ``b`` (the
    region lists are flattened image-major, each box reading its own image through ``box_indices``).
    With ``variant="aligned"``, sampling and pooling are those of :func:`lcr_tf.ops.roi_align.roi_align`
    (half-pixel aligned, ``sampling_ratio`` x ``sampling_ratio`` bilinear samples per cell, max or average
    pooled); with ``variant="legacy"``, those of :func:`lcr_tf.ops.roi_align.roi_align_legacy`
    (Detectron's RoIAlign, the released LCR-Net++ models': no half-pixel offset, ``sampling_ratio`` 0 for
    adaptive sampling, always averaged). Boxes are treated as constants (no gradient flows into them: the
    approximate joint training of Faster R-CNN that the paper follows); gradients flow into ``features``.

    Args:
      output_size: S, cells per side (the backbone's ``roi_size``).
      spatial_scale: feature cells per image pixel, 1 / stride (1/16).
      sampling_ratio: bilinear samples per cell side (2: the paper's 4 points per cell); with the legacy
        variant 0 means adaptive, ``ceil(RoI side / S)`` per cell side (the released models).
      pooling: ``"max"`` (the paper) or ``"avg"``. Validated but unused by the legacy variant, which
        averages like Detectron's kernel (a model config's ``roi_pooling`` can stay at its default).
      variant: ``"aligned"`` (default) or ``"legacy"``, one of :data:`lcr_tf.ops.roi_align.VARIANTS`.
    """

    def __init__(self, output_size: int, spatial_scale: float, sampling_ratio: int = 2,
                 pooling: str = "max", variant: str = "aligned", **kwargs):
        super().__init__(**kwargs)
        if pooling not in roi_align_lib.POOLINGS:
            raise ValueError(f"pooling must be one of {roi_align_lib.POOLINGS}; got {pooling!r}")
        if variant not in roi_align_lib.VARIANTS:
            raise ValueError(f"variant must be one of {roi_align_lib.VARIANTS}; got {variant!r}")
        min_sampling = 0 if variant == "legacy" else 1  # 0: the legacy kernel's adaptive sampling
        if int(output_size) < 1 or int(sampling_ratio) < min_sampling or not float(spatial_scale) > 0:
            raise ValueError(f"need output_size >= 1, sampling_ratio >= {min_sampling} (variant {variant!r}) "
                             f"and spatial_scale > 0; got {output_size}, {sampling_ratio}, {spatial_scale}")
        self.output_size = int(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.pooling = pooling
        self.variant = variant
        # Keras would cast the RoIs to the compute dtype under a mixed policy: bfloat16 keeps 8 bits of
        # a pixel coordinate (2 px steps at 256). The features are cast here instead.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

    def call(self, features, rois):
        features = tf.cast(features, self.compute_dtype)
        rois = tf.stop_gradient(tf.cast(rois, tf.float32))
        shape = tf.shape(rois)
        batch, per_image = shape[0], shape[1]
        box_indices = tf.repeat(tf.range(batch, dtype=tf.int32), per_image)
        boxes = tf.reshape(rois, [-1, 4])
        if self.variant == "legacy":
            return roi_align_lib.roi_align_legacy(features, boxes, box_indices, output_size=self.output_size,
                                                  spatial_scale=self.spatial_scale,
                                                  sampling_ratio=self.sampling_ratio)
        return roi_align_lib.roi_align(features, boxes, box_indices,
                                       output_size=self.output_size, spatial_scale=self.spatial_scale,
                                       sampling_ratio=self.sampling_ratio, pooling=self.pooling)

    def compute_output_shape(self, features_shape, rois_shape):
        b, r = features_shape[0], rois_shape[1]
        n = None if b is None or r is None else b * r
        return (n, self.output_size, self.output_size, features_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(output_size=self.output_size, spatial_scale=self.spatial_scale,
                      sampling_ratio=self.sampling_ratio, pooling=self.pooling, variant=self.variant)
        return config
