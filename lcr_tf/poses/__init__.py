"""3D human poses, before any image (paper Sec 3.3, 3.7 and 4.1-4.2).

* :mod:`lcr_tf.poses.body_model`, :mod:`lcr_tf.poses.body_angles`: the embedded body model (bone lengths,
  joint-angle limits, motion families) that samples the default pose corpus;
* :mod:`lcr_tf.poses.mocap`: readers of motion-capture files (ASF/AMC, BVH) and their rigs;
* :mod:`lcr_tf.poses.pose_corpus`: a corpus of 3D poses and its ``.npz`` file;
* :mod:`lcr_tf.poses.anchors`: the K anchor-poses (full-body and upper-body) clustered from the corpus;
* :mod:`lcr_tf.poses.pseudo_gt`: pseudo ground-truth 3D poses by nearest-neighbour search (eq 9);
* :mod:`lcr_tf.poses.viz`: drawings of poses (2D overlays, 3D plots, anchor-pose sheets).
"""
