"""The dataset reader interface (lcr_tf.datasets.base), the reader registry, and the synthetic reader."""

import pickle

import cloudpickle
import numpy as np
import pytest

from lcr_tf import datasets
from lcr_tf.datasets.base import DatasetReader, ImageRecord, Person, RecordError, stack_people


class CountingReader(DatasetReader):
    """Keys are file names in a folder; the annotation 'table' is expensive and cached."""

    name = "counting"
    skeleton = "lsp14"
    builds = 0

    def __init__(self, folder: str, limit: int = 3):
        super().__init__()
        self.folder = folder
        self.limit = limit

    def list_items(self):
        return [f"im{i}.jpg" for i in range(self.limit)]

    def table(self):
        def build():
            CountingReader.builds += 1
            return {k: np.full((14, 2), float(i)) for i, k in enumerate(self.list_items())}
        return self.cached("table", build)

    def read(self, key):
        if key not in self.table():
            raise RecordError(key, "no annotation")
        return ImageRecord(key, self.name, self.skeleton, [Person.from_points(self.table()[key])],
                           image_path=f"{self.folder}/{key}")


def test_reader_lists_reads_and_pickles_without_its_cache(tmp_path):
    reader = CountingReader(str(tmp_path))
    assert reader.list_items() == ["im0.jpg", "im1.jpg", "im2.jpg"]
    CountingReader.builds = 0
    record = reader.read("im1.jpg")
    reader.read("im2.jpg")
    assert CountingReader.builds == 1  # built once, reused
    assert record.num_joints == 14 and record.image_path.endswith("im1.jpg")
    np.testing.assert_array_equal(record.people[0].pose2d, np.ones((14, 2)))
    assert record.people[0].annotated.all() and record.people[0].visible is None

    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        blob = dumps(reader)
        assert len(blob) < 1000  # options only: the table stays behind
        copy = loads(blob)
        assert copy.folder == reader.folder and copy._cache == {}
        copy.read("im0.jpg")
    assert CountingReader.builds == 3  # each copy rebuilt its own table
    assert reader.describe() == {"folder": str(tmp_path), "limit": 3}
    assert reader.key_name(("a", 1)) == "('a', 1)"

    with pytest.raises(RecordError) as info:
        reader.read("other.jpg")
    assert info.value.key == "other.jpg" and info.value.reason == "no annotation"
    assert str(info.value) == "other.jpg: no annotation"
    again = pickle.loads(pickle.dumps(info.value))  # crosses Beam's process boundaries intact
    assert (again.key, again.reason) == ("other.jpg", "no annotation")


def test_an_incomplete_reader_cannot_be_built():
    class NoRead(DatasetReader):
        name = "x"

        def list_items(self):
            return []

    with pytest.raises(TypeError, match="read"):
        NoRead()


def test_image_bytes_come_from_memory_or_a_file(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xffabc")
    in_memory = ImageRecord("i", "d", "lcr13", [], image_bytes=b"xyz", image_path=str(tmp_path / "none"))
    assert in_memory.load_image_bytes() == b"xyz"  # bytes win over the path
    on_disk = ImageRecord("i", "d", "lcr13", [], image_path=str(tmp_path / "a.jpg"))
    assert on_disk.load_image_bytes() == b"\xff\xd8\xffabc"
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        ImageRecord("i", "d", "lcr13", [], image_path=str(tmp_path / "missing.jpg")).load_image_bytes()
    with pytest.raises(ValueError, match="'i' has neither"):
        ImageRecord("i", "d", "lcr13", []).load_image_bytes()
    record = ImageRecord("i", "d", "coco17", [])
    assert record.ignore_regions.shape == (0, 4) and record.intrinsics is None and record.num_joints == 17


def test_person_from_points_marks_the_finite_joints():
    pose = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0]])
    person = Person.from_points(pose, person_id="7")
    np.testing.assert_array_equal(person.annotated, [True, False, True])
    assert person.pose2d.dtype == np.float32 and person.person_id == "7" and person.pose3d is None


def test_stack_people_checks_shapes_and_fills_missing_fields():
    j = 13
    good = Person(np.zeros((j, 2)), np.ones(j, bool), visible=np.arange(j) % 2 == 0,
                  pose3d=np.ones((j, 3)))
    no_3d = Person(np.ones((j, 2)), np.arange(j) < 5)
    people = [good, Person(np.zeros((14, 2)), np.ones(14, bool)), no_3d,
              Person(np.zeros((j, 3)), np.ones(j, bool)), Person(np.zeros((j, 2)), np.ones(j, bool),
                                                                 pose3d=np.zeros((12, 3))),
              Person(np.zeros((j, 2)), np.ones(j + 1, bool))]
    ok, problems, pose2d, annotated, visible, has_visible, pose3d, has_3d = stack_people(people, j)
    np.testing.assert_array_equal(ok, [0, 2])
    assert [(i, code) for i, code, _ in problems] == [
        (1, "wrong_joint_count"), (3, "wrong_shape"), (4, "wrong_joint_count"), (5, "wrong_joint_count")]
    assert "pose2d has shape (14, 2), expected (13, 2)" in problems[0][2]
    assert "pose3d has shape (12, 3)" in problems[2][2]
    assert pose2d.shape == (2, j, 2) and annotated.shape == (2, j) and pose3d.shape == (2, j, 3)
    np.testing.assert_array_equal(has_visible, [True, False])
    np.testing.assert_array_equal(has_3d, [True, False])
    np.testing.assert_array_equal(visible[0], np.arange(j) % 2 == 0)
    assert not visible[1].any() and np.isnan(pose3d[1]).all() and (pose3d[0] == 1).all()
    np.testing.assert_array_equal(annotated[1], np.arange(j) < 5)
    empty = stack_people([], j)
    assert empty[0].shape == (0,) and empty[2].shape == (0, j, 2) and empty[6].shape == (0, j, 3)


def test_registry_builds_readers_and_names_bad_options():
    assert "synthetic" in datasets.reader_names()
    with pytest.raises(KeyError, match="unknown dataset 'nope'.*synthetic"):
        datasets.get_reader("nope")
    with pytest.raises(ValueError, match="takes no option input"):
        datasets.get_reader("synthetic", num_images=3, input="x")
    with pytest.raises(ValueError, match="needs option.*num_images"):
        datasets.get_reader("synthetic")
    with pytest.raises(ValueError, match="needs --num_images"):
        datasets.reader_options("synthetic", {"input": "x", "num_images": None, "seed": 3})
    assert datasets.reader_options("synthetic", {"input": "x", "num_images": 5, "seed": 3, "poses": None}) == {
        "num_images": 5, "seed": 3}
    reader = datasets.get_reader("synthetic", num_images=4, seed=2)
    assert isinstance(reader, DatasetReader) and reader.name == "synthetic" and reader.skeleton == "lcr13"
    assert reader.list_items() == [0, 1, 2, 3]
    assert reader.key_name(3) == "s2_0000003"
    with pytest.raises(ValueError, match="max_people=1 is below min_people=2"):
        datasets.get_reader("synthetic", num_images=1, min_people=2, max_people=1)
    with pytest.raises(ValueError, match="num_images must be an integer >= 1"):
        datasets.get_reader("synthetic", num_images=0)


# ----------------------------------------------------------------------------- synthetic reader


@pytest.fixture(scope="module")
def render_synthetic():
    return pytest.importorskip("lcr_tf.synthetic")


def test_synthetic_labels_are_passed_on_in_the_package_convention(render_synthetic):
    """The renderer's labels are already continuous pixels (lcr_tf.contracts.geometry): a joint the
    renderer puts at (x, y) comes out at (x, y) + PIXEL_OFFSET = (x, y)."""
    from lcr_tf.datasets import synthetic as synthetic_reader
    assert synthetic_reader.PIXEL_OFFSET == 0.0
    reader = datasets.get_reader("synthetic", num_images=1, seed=1, body_model_poses=50, height=64, width=64,
                                 max_people=1)
    label = reader.render(0).pose2d[0, 0]
    np.testing.assert_array_equal(reader.read(0).people[0].pose2d[0], label.astype(np.float32))


def test_synthetic_reader_returns_the_renderers_exact_annotations(render_synthetic):
    import cv2
    reader = datasets.get_reader("synthetic", num_images=3, seed=4, body_model_poses=300, height=160,
                                 width=192, max_people=3)
    blob = cloudpickle.dumps(reader)
    reader.setup()
    record = reader.read(1)
    assert len(cloudpickle.dumps(reader)) == len(blob)  # the loaded corpus is not pickled

    from lcr_tf.poses import body_model
    corpus = body_model.sample_poses(300, 4).poses3d
    truth = render_synthetic.render_image(corpus, 1, 4, reader.render_config())
    assert record.image_id == "s4_0000001" and record.dataset == "synthetic" and record.skeleton == "lcr13"
    assert (record.height, record.width) == (160, 192) == truth.image.shape[:2]
    np.testing.assert_allclose(record.intrinsics, truth.intrinsics)
    assert len(record.people) == truth.pose2d.shape[0] >= 1
    for p, person in enumerate(record.people):
        np.testing.assert_allclose(person.pose2d, truth.pose2d[p], atol=1e-4)
        np.testing.assert_allclose(person.pose3d, truth.pose3d[p], atol=1e-6)
        np.testing.assert_array_equal(person.visible, truth.visible[p])
        assert person.annotated.all()
    decoded = cv2.imdecode(np.frombuffer(record.image_bytes, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (160, 192, 3)
    # JPEG at quality 90 stays close to the rendered pixels (BGR from OpenCV, RGB from the renderer).
    assert np.abs(decoded[..., ::-1].astype(float) - truth.image).mean() < 8.0
    again = datasets.get_reader("synthetic", num_images=3, seed=4, body_model_poses=300, height=160,
                                width=192, max_people=3).read(1)
    assert again.image_bytes == record.image_bytes  # same key and seed, same bytes
    assert reader.read(2).image_bytes != record.image_bytes


def test_stack_people_of_an_image_without_people_gives_boolean_masks():
    ok, problems, pose2d, annotated, visible, has_visible, pose3d, has_3d = stack_people([], 14)
    assert ok.shape == (0,) and problems == []
    assert pose2d.shape == (0, 14, 2) and pose3d.shape == (0, 14, 3)
    assert annotated.dtype == bool and visible.dtype == bool and annotated.shape == visible.shape == (0, 14)
    assert (annotated & visible).shape == (0, 14)   # masks combine as the job combines them


# ----------------------------------------------------------------------------- file access helpers


def test_file_helpers_name_the_file(tmp_path):
    from lcr_tf.datasets import base
    missing = str(tmp_path / "nothing.json")
    with pytest.raises(FileNotFoundError, match=r"annotation file .*nothing.json does not exist"):
        base.load_json(missing, "annotation file")
    with pytest.raises(FileNotFoundError, match="nothing.json does not exist"):
        base.read_bytes(missing)
    with pytest.raises(OSError, match=r"cannot read file .*"):
        base.read_bytes(str(tmp_path))  # a folder
    path = str(tmp_path / "a.json")
    with base.open_file(path, "w") as f:
        f.write('{"x": [1, 2]}')
    assert base.load_json(path) == {"x": [1, 2]} and base.read_bytes(path) == b'{"x": [1, 2]}'
    with base.open_file(path, "r") as f:
        assert f.read().startswith("{")
    with pytest.raises(ValueError, match="a.json: not a readable MATLAB file"):
        base.load_mat(path)
    (tmp_path / "b.json").write_text("{")
    with pytest.raises(ValueError, match="b.json: not valid JSON"):
        base.load_json(str(tmp_path / "b.json"))
    assert base.file_name("gs://bucket/dir/joints.mat") == "joints.mat" and base.is_url("gs://b/x")
    assert base.join_path("gs://b", "x", "y.jpg") == "gs://b/x/y.jpg" and not base.file_exists(missing)
