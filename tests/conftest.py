"""Shared fixtures. Real data lives beside the repository, in ``../shared/data`` (or where the
``LCR_TF_SHARED_DATA`` environment variable points); tests that need it skip with the reason when it is
absent, as it is in a user's clone."""

import os

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    from lcr_tf import body_model
    d = tmp_path_factory.mktemp("job_assets")
    body_model.sample_poses(2000, seed=1).save(str(d / "poses.npz"))
    anchor_poses.run(str(d / "poses.npz"), 8, str(d / "anchors.npz"), views=2, figure="", verbose=False)
    return {"poses": str(d / "poses.npz"), "anchors": str(d / "anchors.npz")}
