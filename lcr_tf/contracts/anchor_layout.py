"""The anchor-pose class layout of the classifier and regressor: the one place that defines it.

Symbols used across the package:

=====  ===========================  ==========================================================
K      ``num_anchor_poses``         full-body anchor-poses, the paper's K (Sec 4.1)
2K     ``num_pose_classes(K)``      foreground classes, one per anchor-pose row: K full-body then
                                    K upper-body ("dealing with truncation", Sec 4.2)
2K+1   ``num_classes(K)``           classifier outputs, background first (eq 3); the regressor has
                                    5 J numbers per class (:mod:`lcr_tf.ops.pose_coding`)
=====  ===========================  ==========================================================

====================  ===============================  =====================================
class                 meaning                          anchor row (``class - 1``)
====================  ===============================  =====================================
``0``                 background                       none
``1 .. K``            full-body anchor ``k = c - 1``   ``0 .. K-1``   (upper-body False)
``K+1 .. 2K``         upper-body anchor ``k = c-K-1``  ``K .. 2K-1``  (upper-body True)
====================  ===============================  =====================================

Row ``k + K`` has the same 3D pose as row ``k``; the anchor tables (:class:`lcr_tf.poses.anchors.AnchorSet`,
the model's anchor constants) are indexed by row, i.e. class minus one. The functions work on Python
ints, NumPy arrays and TensorFlow tensors alike.
"""

BACKGROUND_CLASS = 0


def num_pose_classes(num_anchor_poses):
    """K -> 2K, the foreground classes (rows of the anchor tables)."""
    return 2 * num_anchor_poses


def num_classes(num_anchor_poses):
    """K -> 2K + 1, the classifier outputs with the background."""
    return 2 * num_anchor_poses + 1


def full_body_class(k):
    """Anchor-pose ``k`` in ``[0, K)`` -> its full-body class ``k + 1``."""
    return k + 1


def upper_body_class(k, num_anchor_poses):
    """Anchor-pose ``k`` in ``[0, K)`` -> its upper-body class ``K + k + 1``."""
    return k + num_anchor_poses + 1


def anchor_row(cls):
    """Foreground class in ``1 .. 2K`` -> its row ``class - 1`` of the anchor tables."""
    return cls - 1


def anchor_pose(cls, num_anchor_poses):
    """Foreground class in ``1 .. 2K`` -> the anchor-pose ``k`` in ``[0, K)`` whose 3D pose it regresses
    (full-body and upper-body classes of the same k share it)."""
    return (cls - 1) % num_anchor_poses
