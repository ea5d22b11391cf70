"""The authors' released LCR-Net++ models in lcr_tf: reading their files safely, converting their weights and
settings to this package's model, and exporting it for TF Serving.

The released network is a configuration of :class:`lcr_tf.modeling.lcr_model.LCRNet`
(:func:`lcr_tf.release.convert.release_model_config`), not a second model.
"""
