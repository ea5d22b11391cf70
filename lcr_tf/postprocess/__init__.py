"""Inference post-processing: candidate selection and decoding, rescoring (eq 6), pose proposal
integration (eq 7-8) with its NMS baseline in NumPy and TensorFlow, and 3D placement (Fig 15)."""

from lcr_tf.postprocess.params import PPIParams
# ``ppi`` is the module lcr_tf.postprocess.ppi, callable as its function ppi.ppi (see that module).
from lcr_tf.postprocess import ppi
from lcr_tf.postprocess.ppi import Detections

__all__ = ["PPIParams", "Detections", "ppi"]
