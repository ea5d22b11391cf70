"""Shared fixtures and helpers. Real data lives beside the repository, in ``../shared/data`` (or where the
``LCR_TF_SHARED_DATA`` environment variable points); tests that need it skip with the reason when it is
absent, as it is in a user's clone."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.training import distribute

# The CPU as two logical devices, before any test runs TensorFlow, so that the distributed training
# path runs here (tests/test_distributed.py). Ops without a device go to the first one, as before.
CPU_REPLICAS = 2
distribute.configure_cpu_replicas(CPU_REPLICAS)

# No test may pass or fail by chance. TensorFlow's kernels run deterministically (a reduction does not
# depend on which thread finishes first), and every test starts from the same random state whatever ran
# before it in its worker process: pytest-xdist hands tests to its workers in an order that changes from
# run to run. A test that trains or samples then computes the same numbers on every run of one machine;
# its bounds still carry the margins measured over seeds (written in the test), for other CPUs.
tf.config.experimental.enable_op_determinism()
TEST_SEED = 0


@pytest.fixture(autouse=True)
def same_random_state():
    """Python's, NumPy's and TensorFlow's global generators seeded with :data:`TEST_SEED` before each test."""
    keras.utils.set_random_seed(TEST_SEED)

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lift_lcr13(lcr, target, extras):
    """(N, 13, 3) LCR-13 poses -> (N, target.num_joints, 3) poses of a 17-joint dataset skeleton.

    Joints of the same name are copied; ``extras(hips, shoulders, head)`` (each (N, 3), the hip and
    shoulder mid-points and the head) returns ``{joint name: (N, 3)}`` for the dataset's other joints
    (placed plausibly: the readers under test only carry them through).
    """
    lcr13 = skeleton_lib.LCR13
    out = np.zeros((lcr.shape[0], target.num_joints, 3))
    for j, name in enumerate(target.joint_names):
        if name in lcr13.joint_names:
            out[:, j] = lcr[:, lcr13.index(name)]
    hips = lcr[:, [lcr13.index("left_hip"), lcr13.index("right_hip")]].mean(1)
    shoulders = lcr[:, [lcr13.index("left_shoulder"), lcr13.index("right_shoulder")]].mean(1)
    for name, value in extras(hips, shoulders, lcr[:, lcr13.index("head")]).items():
        out[:, target.index(name)] = value
    return out


def _shared_data_dir():
    return os.environ.get("LCR_TF_SHARED_DATA", os.path.join(os.path.dirname(_REPO), "shared", "data"))


@pytest.fixture(scope="session")
def shared_data():
    """Path of the real data folder; skips the test when it is not there."""
    path = _shared_data_dir()
    if not os.path.isdir(path):
        pytest.skip(f"needs the real data folder ../shared/data (or $LCR_TF_SHARED_DATA); not found at {path}")
    return path


@pytest.fixture(scope="session")
def mocap_dir(shared_data):
    path = os.path.join(shared_data, "mocap")
    if not os.path.isdir(path):
        pytest.skip(f"needs the CMU MoCap trials in ../shared/data/mocap; not found at {path}")
    return path


@pytest.fixture(scope="session")
def job_assets(tmp_path_factory):
    """A 2000-pose body-model corpus (``poses``) and its K=8 anchors (``anchors``), as the TFRecord job
    reads them: shared by the tests that run ``beam_jobs.build_tfrecords`` on a dataset reader."""
    from beam_jobs import anchor_poses
    from lcr_tf.poses import body_model
    d = tmp_path_factory.mktemp("job_assets")
    body_model.sample_poses(2000, seed=1).save(str(d / "poses.npz"))
    anchor_poses.run(str(d / "poses.npz"), 8, str(d / "anchors.npz"), views=2, figure="", verbose=False)
    return {"poses": str(d / "poses.npz"), "anchors": str(d / "anchors.npz")}


#: Start-up notices of TensorFlow and Beam that a command must not print (lcr_tf.contracts.console); the
#: lines as TensorFlow 2.21 and Beam 2.77 print them on a machine without a GPU.
LIBRARY_NOTICES = ("apitools not found", "oneDNN custom operations are on", "Could not find cuda drivers",
                   "failed call to cuInit", "absl::InitializeLog", "cpu_feature_guard")


def assert_no_library_notices(*outputs: str) -> None:
    """Fails naming the first library notice found in a command's output (stdout and stderr)."""
    for output in outputs:
        for notice in LIBRARY_NOTICES:
            assert notice not in (output or ""), f"the command printed a library notice ({notice!r}):\n{output[-3000:]}"
