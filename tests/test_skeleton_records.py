"""Records in another skeleton than LCR-13 (MuPoTS-3D's 14 joints): the schema's ``schema/skeleton`` and the
version-2 records that read as LCR-13, the labelling target and its pseudo ground-truth refusal, the
decoder's, the pipeline's and the trainer's skeleton checks, the flip of 14-joint people, the build job with
``--skeleton=mupots14`` on MuCo-3DHP-format data, and anchor-poses clustered from the records."""

import cv2
import keras
import muco_format
import numpy as np
import pytest
import tensorflow as tf

from beam_jobs import anchor_poses
from beam_jobs import build_tfrecords as bt
from lcr_tf import synthetic
from lcr_tf.contracts import batch_keys, features, shard_manifest
from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.data import augment, pipeline, record_poses
from lcr_tf.data import decoder as decoder_lib
from lcr_tf.datasets import labelling
from lcr_tf.datasets import records as records_lib
from lcr_tf.datasets.base import ImageRecord, Person
from lcr_tf.datasets.muco import MucoReader
from lcr_tf.modeling import factory
from lcr_tf.poses import anchors as anchors_lib
from lcr_tf.poses import body_model
from lcr_tf.training import config as config_lib
from lcr_tf.training import step as training_step

MU14, MU17, LCR = skeleton_lib.MUPOTS14, skeleton_lib.MUPOTS17, skeleton_lib.LCR13
S = 128
NUM_IMAGES = 8
K14 = 6
IN_PROCESS = []  # Beam's in-process DirectRunner


def write_muco_scenes(root, num_images: int = NUM_IMAGES, seed: int = 0) -> muco_format.MucoTree:
    """A MuCo-3DHP tree (tests/muco_format.py) of ``num_images`` synthetic 128 x 128 scenes of one or two
    body-model people each: the rendered pixels, the renderer's camera, and every person's 3D in ``muco21``
    (:func:`muco_format.muco21_from`: a head top beyond the head, the neck at mid-shoulder), so the 2D the
    file gives is the projection the image shows."""
    corpus = body_model.sample_poses(300, seed=0).poses3d
    config = synthetic.RenderConfig(height=S, width=S, min_people=1, max_people=2, truncation_prob=0.0,
                                    occluder_prob=0.0, blur_prob=0.0, person_height_range=(0.5, 0.9))
    images = []
    for i in range(num_images):
        r = synthetic.render_image(corpus, i, seed, config)
        fx, fy, cx, cy = (float(v) for v in r.intrinsics)
        images.append(muco_format.MucoImage(muco_format.muco21_from(r.pose3d_camera * 1000.0), f=(fx, fy),
                                            c=(cx, cy), width=S, height=S, pixels=r.image[..., ::-1].copy()))
    return muco_format.write_muco_tree(root, images)


def build_mupots14_records(root, num_shards: int = 2):
    """``beam_jobs.build_tfrecords --dataset=muco --skeleton=mupots14`` without anchors on
    :func:`write_muco_scenes`, then ``beam_jobs.anchor_poses --poses_from_records`` (K = 6, 2 views) on its
    output. Returns {"train": the shards' glob, "prefix", "summary", "anchors": the anchors file, "tree"}."""
    tree = write_muco_scenes(root / "muco")
    prefix = str(root / "records" / "muco")
    summary = bt.run(MucoReader(input=tree.root), prefix, None, IN_PROCESS, num_shards=num_shards,
                     skeleton=MU14.name)
    anchors = str(root / "anchors_mupots14.npz")
    anchor_poses.run(None, K14, anchors, views=2, figure="", verbose=False, poses_from_records=f"{prefix}-*")
    return {"train": f"{prefix}-*.tfrecord", "prefix": prefix, "summary": summary, "anchors": anchors,
            "tree": tree}


@pytest.fixture(scope="module")
def mupots14_records(tmp_path_factory):
    return build_mupots14_records(tmp_path_factory.mktemp("mupots14"))


def _png(height=S, width=S):
    return cv2.imencode(".png", np.full((height, width, 3), 90, np.uint8))[1].tobytes()


def _record(skeleton=MU14, people=2, image_id="im-0"):
    j = skeleton.num_joints
    rng = np.random.default_rng(0)
    return {features.SKELETON: skeleton.name, features.IMAGE_ENCODED: _png(), features.IMAGE_FORMAT: "png",
            features.IMAGE_ID: image_id, features.IMAGE_SOURCE: "test", features.IMAGE_HEIGHT: S,
            features.IMAGE_WIDTH: S, features.BOX: np.tile([10.0, 10.0, 90.0, 120.0], (people, 1)),
            features.POSE2D: rng.uniform(10, 90, (people, j, 2)), features.ANNOTATED: np.ones((people, j)),
            features.COMPLETED: np.zeros((people, j)), features.VISIBLE: np.ones((people, j)),
            features.POSE3D: rng.normal(0, 0.3, (people, j, 3)), features.POSE3D_SOURCE: np.zeros(people),
            features.PSEUDO_GT_DISTANCE: np.zeros(people), features.ANCHOR_CLASS: np.ones(people)}


def _version2(serialized: bytes) -> bytes:
    """An LCR-13 record as version 2 wrote it: no ``schema/skeleton``."""
    example = tf.train.Example.FromString(serialized)
    example.features.feature[features.VERSION].int64_list.value[0] = 2
    del example.features.feature[features.SKELETON]
    return example.SerializeToString()


def test_schema_records_the_skeleton_and_reads_version_2_as_lcr13():
    serialized = features.encode_example(_record()).SerializeToString()
    assert features.record_skeleton(serialized) == "mupots14"
    numpy_view = features.decode_example_numpy(serialized)
    assert numpy_view[features.SKELETON] == b"mupots14" and numpy_view[features.POSE2D].shape == (2, 14, 2)
    parsed = features.parse_example(tf.constant(serialized), MU14.num_joints)
    assert parsed[features.POSE3D].shape == (2, 14, 3) and parsed[features.SKELETON].numpy() == b"mupots14"
    # Records written before the field: version 2, LCR-13.
    old = _version2(features.encode_example(_record(LCR)).SerializeToString())
    assert features.record_skeleton(old) == "lcr13"
    assert features.decode_example_numpy(old)[features.POSE2D].shape == (2, 13, 2)
    assert decoder_lib.decode(tf.constant(old))[batch_keys.POSE2D].shape == (2, 13, 2)
    bad = dict(_record(), **{features.SKELETON: "mupots15"})
    with pytest.raises(ValueError, match="image 'im-0'.*schema/skeleton.*'mupots15'"):
        features.encode_example(bad)
    with pytest.raises(ValueError, match=r"person/pose2d' has shape \(2, 13, 2\), expected \(2, 14, 2\)"):
        features.encode_example(dict(_record(), **{features.POSE2D: np.zeros((2, 13, 2))}))


def _item(people, skeleton, image_id="rec-0"):
    record = ImageRecord(image_id=image_id, dataset="test", skeleton=skeleton, people=people, image_bytes=_png())
    return labelling.image_item(record, image_id, "test")


def _mupots17_person(seed, with_3d=True):
    lcr = body_model.sample_poses(1, seed=seed).poses3d.astype(np.float64)
    pose3d = skeleton_lib.centre_poses(muco_format.muco21_from(lcr)[:, :MU17.num_joints], MU17)[0]
    pose2d = pose3d[:, :2] * 100.0 + 64.0
    return Person(pose2d, np.ones(MU17.num_joints, bool), pose3d=pose3d if with_3d else None,
                  person_id=f"p{seed}")


def test_labelling_writes_the_target_skeleton_and_refuses_pseudo_gt():
    item = _item([_mupots17_person(1), _mupots17_person(2, with_3d=False)], MU17.name)
    assert labelling.convert_people(item, target="mupots14") == []
    assert item.skeleton == "mupots14" and item.pose2d.shape == (2, 14, 2)
    np.testing.assert_allclose(item.pose3d[0], skeleton_lib.centre_poses(
        item.record.people[0].pose3d[:14], MU14), atol=1e-9)

    def database():
        raise AssertionError("the LCR-13 pose database must not be built for mupots14 records")

    refused = labelling.pseudo_ground_truth(item, database)
    assert [(i, pid) for i, pid, _ in refused] == [(1, "p2")]
    assert "lcr13 pose corpus, which lacks the mupots14 joints head_top:" in refused[0][2]
    assert item.person_index.tolist() == [0]
    example = features.decode_example_numpy(records_lib.encode_item(item, None)[0])
    assert example[features.SKELETON] == b"mupots14" and example[features.POSE3D].shape == (1, 14, 3)
    assert example[features.ANCHOR_CLASS].tolist() == [features.UNASSIGNED_CLASS]
    # LCR-13 people with 3D have no head top (the neck is the mid-shoulder rule): rejected, naming it.
    lcr = body_model.sample_poses(1, seed=3).poses3d[0].astype(np.float64)
    lcr_item = _item([Person(lcr[:, :2] * 100 + 64, np.ones(13, bool), pose3d=lcr)], LCR.name)
    (problem,) = labelling.convert_people(lcr_item, target="mupots14")
    assert problem[2:] == ("bad_pose3d", "pose3d does not give the mupots14 joints head_top")
    with pytest.raises(ValueError, match="lcr13, mupots14, not 'coco17'"):
        labelling.convert_people(_item([_mupots17_person(1)], MU17.name), target="coco17")


def test_the_decoder_names_the_shard_and_both_skeletons():
    serialized = tf.constant(features.encode_example(_record(image_id="im-9")).SerializeToString())
    element = decoder_lib.decode(serialized, "muco-00001-of-00002.tfrecord", MU14)
    assert element[batch_keys.POSE2D].shape == (2, 14, 2) and element[batch_keys.ANNOTATED].shape == (2, 14)
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        decoder_lib.decode(serialized, "muco-00001-of-00002.tfrecord")
    message = str(e.value)
    assert "muco-00001-of-00002.tfrecord: image im-9" in message
    assert "skeleton mupots14 (schema/skeleton), the reader expects skeleton lcr13 (13 joints)" in message


def test_a_flip_swaps_left_and_right_of_14_joint_people():
    element = decoder_lib.decode(tf.constant(features.encode_example(_record()).SerializeToString()), None, MU14)
    flipped = augment.flip_horizontal(element, skeleton=MU14)
    pose2d, mirrored = element[batch_keys.POSE2D].numpy(), flipped[batch_keys.POSE2D].numpy()
    for name, other in (("head_top", "head_top"), ("neck", "neck"), ("left_wrist", "right_wrist"),
                        ("right_ankle", "left_ankle")):
        np.testing.assert_allclose(mirrored[:, MU14.index(name), 0], S - pose2d[:, MU14.index(other), 0], atol=1e-4)
        np.testing.assert_allclose(flipped[batch_keys.POSE3D].numpy()[:, MU14.index(name)],
                                   element[batch_keys.POSE3D].numpy()[:, MU14.index(other)] * [-1, 1, 1], atol=1e-6)


def test_the_build_job_writes_mupots14_records(mupots14_records):
    summary, prefix = mupots14_records["summary"], mupots14_records["prefix"]
    assert summary["parameters"]["skeleton"] == "mupots14" and summary["parameters"]["anchors"] is None
    assert summary["images"]["written"] == NUM_IMAGES and summary["check"]["images_accounted"]
    assert set(summary["completed_joints"]["by_joint"]) == set(MU14.joint_names)
    assert shard_manifest.read_skeleton(shard_manifest.manifest_path(prefix)) == "mupots14"
    tree = mupots14_records["tree"]
    people = 0
    for path in records_lib.shard_paths(prefix, 2):
        for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
            example = features.decode_example_numpy(raw)
            assert example[features.SKELETON] == b"mupots14"
            assert (example[features.ANCHOR_CLASS] == features.UNASSIGNED_CLASS).all()
            spec = {s.image_id: s for s in tree.images}[int(example[features.IMAGE_ID])]
            truth = skeleton_lib.centre_poses(spec.poses()[:, :14] / 1000.0, MU14)
            np.testing.assert_allclose(example[features.POSE3D], truth, atol=1e-4)
            people += example[features.POSE3D].shape[0]
    assert people == summary["persons"]["written"] > NUM_IMAGES


def test_anchor_poses_from_the_records(mupots14_records, tmp_path):
    anchor_set = anchors_lib.load(mupots14_records["anchors"])
    assert anchor_set.skeleton.name == "mupots14" and anchor_set.num_anchors == K14
    corpus = anchor_set.metadata["corpus"]
    assert corpus["source"] == "records" and corpus["num_poses"] == mupots14_records["summary"]["persons"]["written"]
    # Shards of two skeletons are not one corpus.
    lcr13 = tmp_path / "lcr-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(lcr13)) as writer:
        writer.write(features.encode_example(_record(LCR)).SerializeToString())
    with pytest.raises(ValueError, match=r"is in skeleton 'lcr13' but .* is in 'mupots14'"):
        record_poses.poses_from_records(f"{mupots14_records['train']},{lcr13}")
    with pytest.raises(ValueError, match="exactly one of --poses and --poses_from_records"):
        anchor_poses.run(None, 2, str(tmp_path / "a.npz"), figure="", verbose=False)


def test_the_pipeline_batches_14_joint_people(mupots14_records):
    anchor_set = anchors_lib.load(mupots14_records["anchors"])
    config = pipeline.InputConfig(image_size=S, max_people=3, batch_size=2, num_epochs=1)
    batch = next(iter(pipeline.make_dataset(mupots14_records["train"], config, training=True, anchors=anchor_set,
                                            deterministic=True)))
    assert batch[batch_keys.POSE2D].shape == (2, 3, 14, 2) and batch[batch_keys.VISIBLE].shape == (2, 3, 14)
    classes = batch[batch_keys.ANCHOR_CLASS].numpy()[batch[batch_keys.PERSON_MASK].numpy()]
    assert classes.size and np.all((classes >= 1) & (classes <= 2 * K14))
    # LCR-13 anchors on these records: the first record stops the pipeline, naming its shard.
    lcr_anchors = anchors_lib.cluster_poses(body_model.sample_poses(100, seed=0).poses3d, 4, 2, seed=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"muco-0000[01]-of-00002.tfrecord: image .* skeleton "
                                                             r"mupots14 .* expects skeleton lcr13"):
        next(iter(pipeline.make_dataset(mupots14_records["train"], config, training=False, anchors=lcr_anchors)))
    with pytest.raises(ValueError, match="anchor set is in skeleton 'lcr13' but the pipeline was asked for 'mupots14'"):
        pipeline.make_dataset(mupots14_records["train"], config, training=False, anchors=lcr_anchors,
                              skeleton="mupots14")


def test_the_trainer_refuses_records_of_another_skeleton_and_reads_version_2_records(mupots14_records, tmp_path):
    lcr_anchors = anchors_lib.cluster_poses(body_model.sample_poses(100, seed=0).poses3d, 4, 2, seed=0)
    config = config_lib.TrainConfig(model=factory.ModelConfig(num_anchors=4, num_joints=13),
                                    data=config_lib.DataConfig(train_data=mupots14_records["train"],
                                                               anchors="lcr13_anchors.npz"))
    with pytest.raises(config_lib.ConfigError) as e:
        config_lib.check_anchors(config, lcr_anchors)
    message = str(e.value)
    assert message.startswith("--train_data: shard ") and "muco-00000-of-00002.tfrecord" in message
    assert "skeleton 'mupots14' (14 joints)" in message and "(--anchors lcr13_anchors.npz)" in message
    assert "skeleton 'lcr13' (13 joints)" in message and "--skeleton=lcr13" in message
    # The records' own skeleton passes; so do version-2 (LCR-13) shards with LCR-13 anchors.
    anchor_set = anchors_lib.load(mupots14_records["anchors"])
    config_lib.check_anchors(config.replace(model=dict(num_anchors=K14, num_joints=14)), anchor_set)
    old = tmp_path / "old-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(old)) as writer:
        writer.write(_version2(features.encode_example(_record(LCR)).SerializeToString()))
    config_lib.check_anchors(config.replace(data=dict(train_data=str(old))), lcr_anchors)
    batch = next(iter(pipeline.make_dataset(str(old), pipeline.InputConfig(image_size=S, batch_size=1),
                                            training=True, anchors=lcr_anchors, deterministic=True)))
    assert batch[batch_keys.POSE2D].shape[2] == 13
    # ... and a 13-joint model trains on them as before.
    model = factory.build_model(factory.ModelConfig(num_anchors=4, image_size=S, rpn_scales=(32.0, 64.0, 128.0),
                                                    rpn_channels=32, fc_dims=(64, 64), rois_per_image=16, seed=3),
                                lcr_anchors, model_class=training_step.TrainableLCRNet)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=False)
    logs = model.train_on_batch(training_step.select_batch(batch), return_dict=True)
    assert np.isfinite(logs[training_step.TOTAL_LOSS]) and logs[training_step.TOTAL_LOSS] > 0


def test_the_build_job_flags(tmp_path, capsys):
    # --skeleton names the choices; a corpus other than LCR-13 is not a pseudo-GT corpus.
    assert bt.main(["b", "--dataset=synthetic", "--num_images=1", "--skeleton=coco17", f"--output={tmp_path}/x"]) == 2
    assert "lcr13" in capsys.readouterr().err
    assert bt.main(["b", "--dataset=synthetic", "--num_images=1", "--skeleton=mupots14", "--min_joints=15",
                    f"--output={tmp_path}/x"]) == 1
    assert "min_joints must be an integer in [2, 14] (mupots14 joints)" in capsys.readouterr().err
