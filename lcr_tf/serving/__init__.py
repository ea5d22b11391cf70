"""Clients of the LCR-Net SavedModel served by TensorFlow Serving: :mod:`lcr_tf.serving.client` (REST and
gRPC requests, ``python -m lcr_tf.serving.client``). Nothing is imported here, so that ``python -m`` runs
the client module exactly once."""
