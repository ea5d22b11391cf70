"""Keras layers of LCR-Net, thin wrappers over :mod:`lcr_tf.ops`: the RPN head (Sec 3.1), RoIAlign
(Sec 3.5), the classification / regression head (Sec 3.2-3.3), the refinement stage (Sec 3.4), and the
trunk's auxiliary joint-heatmap head (training only), batch normalisation synchronised over replicas, and the
space-to-depth stem of the tiny trunk."""

from lcr_tf.layers.joint_heatmap_head import JointHeatmapHead
from lcr_tf.layers.lcr_head import LCRHead
from lcr_tf.layers.refinement import RefinementStage
from lcr_tf.layers.roi_aligner import RoIAligner
from lcr_tf.layers.rpn_head import RPNHead
from lcr_tf.layers.space_to_depth import SpaceToDepth
from lcr_tf.layers.sync_batch_norm import SyncBatchNormalization

__all__ = ["JointHeatmapHead", "LCRHead", "RefinementStage", "RoIAligner", "RPNHead", "SpaceToDepth",
           "SyncBatchNormalization"]
