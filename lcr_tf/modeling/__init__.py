"""Model assembly: :mod:`lcr_tf.modeling.backbones` (ResNet-50, VGG-16 and a small CPU trunk, with their
RoI heads)."""
