"""Pure TensorFlow tensor functions of the model: shapes, units and conventions in every docstring.

* :mod:`lcr_tf.ops.box_ops`: IoU, box areas, clipping, Faster R-CNN box deltas, TF's normalised boxes.
* :mod:`lcr_tf.ops.anchor_boxes`: the RPN's anchor boxes over a feature map (Sec 3.1).
* :mod:`lcr_tf.ops.roi_align`: RoIAlign on one ``tf.image.crop_and_resize`` call (Sec 3.5), and Detectron's
  legacy RoIAlign (no half-pixel offset, adaptive sampling) of the released models.
* :mod:`lcr_tf.ops.proposals`: RPN proposals: decode, clip, drop small boxes, top-k, NMS.
* :mod:`lcr_tf.ops.pose_coding`: the regression layout 5·J·(2K+1), pose targets (Sec 3.1) and decoding.
* :mod:`lcr_tf.ops.targets`: RPN and RoI target assignment and sampling (Sec 3.1, 3.5).
* :mod:`lcr_tf.ops.joint_heatmaps`: joint heatmap targets and loss of the trunk's auxiliary supervision.

Boxes are ``[x1, y1, x2, y2]`` in pixels with the continuous convention (area ``(x2 - x1) * (y2 - y1)``,
no "+1"), except where an op's ``convention="detectron"`` / ``plus_one`` asks for Detectron's +1 widths (the
released models'); TensorFlow's normalised ``[y1, x1, y2, x2]`` appears only inside the ops that need it. Every
function works inside ``tf.function`` and on batches, without Python loops over boxes.
"""
