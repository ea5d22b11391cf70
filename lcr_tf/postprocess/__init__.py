"""Inference post-processing: candidate selection and decoding, rescoring (eq 6), pose proposal
integration (eq 7-8) with its NMS baseline in NumPy and TensorFlow, and 3D placement (Fig 15)."""

from lcr_tf.postprocess.integration import Detections, integrate_candidates, ppi
from lcr_tf.postprocess.params import PPIParams

__all__ = ["PPIParams", "Detections", "integrate_candidates", "ppi"]
