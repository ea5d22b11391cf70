"""The Apache Beam jobs: MoCap files to a pose corpus, anchor-poses, datasets to TFRecord shards, synthetic
images. Each is a ``python -m beam_jobs.<job>`` command (``--help`` explains its flags)."""

from lcr_tf.contracts import console as _console

# ``python -m beam_jobs.<job>``: Beam's and TensorFlow's start-up notices are held back, in the job's
# process and in its worker processes (lcr_tf.contracts.console).
_console.quiet_command()
