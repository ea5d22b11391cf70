"""lcr_tf: LCR-Net++ multi-person 2D and 3D human pose detection in TensorFlow 2 / Keras.

Modules are named after the paper's concepts: :mod:`lcr_tf.contracts.skeleton` (joint sets), :mod:`lcr_tf.contracts.geometry`
(views, projections, pose boxes), :mod:`lcr_tf.pose_corpus` (the 3D pose corpus), :mod:`lcr_tf.anchors`
(anchor-poses, Sec 4.1-4.2), :mod:`lcr_tf.pseudo_gt` (pseudo ground-truth 3D, Sec 3.7 eq 9),
:mod:`lcr_tf.body_model` (the embedded pose source), :mod:`lcr_tf.mocap` (BVH and ASF/AMC readers).
"""

__version__ = "0.1.0"
