"""The project's conventions, one module each, importing nothing else of the project: joint sets
(:mod:`~lcr_tf.contracts.skeleton`), pixel and camera conventions (:mod:`~lcr_tf.contracts.geometry`), boxes,
the anchor-pose class layout, TFRecord features, batch keys, ``.npz`` files, the run folder, the serving
contract, shard manifests, atomic files, the command line (:mod:`~lcr_tf.contracts.cli`) and the console
(:mod:`~lcr_tf.contracts.console`)."""
