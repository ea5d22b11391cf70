"""How closely a converted release model reproduces the release: the largest differences per output on real
photographs, as tests/test_release_convert.py measures them, over more images and settings than the tests.

    python benchmarks/release_parity.py --images='../shared/data/images/*' [--sizes=small,release]

For each setting a random checkpoint in the release's format (tests/ref_lcrnet_release.py) is converted with
``lcr_tf.convert_official`` (float32; batch normalisation kept, and folded as the default export does) and
compared with the NumPy release (forward pass and PPI). ``small``: 160-pixel short side, 600 / 60
proposals; ``release``: InTheWild's 800 pixels (long side at most 1333), 6000 / 1000 proposals.
"""

import glob
import os
import sys
import tempfile
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [_REPO, os.path.join(_REPO, "tests")]

from absl import flags  # noqa: E402

from lcr_tf.contracts import cli  # noqa: E402

FLAGS = flags.FLAGS
SIZES = {"small": dict(test_scale=160, max_size=256, pre_nms=600, post_nms=60), "release": {}}


def define_flags():
    flags.DEFINE_string("images", os.path.join(os.path.dirname(_REPO), "shared", "data", "images", "*"),
                        "Glob of the photographs (JPEG or PNG).")
    flags.DEFINE_list("sizes", ["small", "release"], f"Settings among {sorted(SIZES)}.")
    flags.DEFINE_integer("release_images", 2, "Photographs compared at the release size (each takes ~1 min).")


def main(argv):
    import cv2
    import ref_lcrnet_release
    import release_format
    from test_release_convert import parity

    from lcr_tf import convert_official

    paths = sorted(p for p in glob.glob(FLAGS.images) if p.lower().endswith((".jpg", ".jpeg", ".png")))
    if not paths:
        raise SystemExit(f"no JPEG or PNG matches {FLAGS.images}")
    keys = ("box_px", "box_input_px", "class_prob", "pose2d_px", "pose3d_m", "person_score_rel", "person_pose2d_px",
            "person_pose3d_m")
    for size in FLAGS.sizes:
        ck = ref_lcrnet_release.make_release_checkpoint(num_joints=13, seed=1, **SIZES[size])
        with tempfile.TemporaryDirectory() as root:
            path = os.path.join(root, "InTheWild-ResNet50.pkl")
            release_format.write_release_pickle(path, ck["model"], ck["cfg"], ck["anchor_poses"], ck["ppi_params"])
            for fold in (False, True):
                start = time.perf_counter()
                export = convert_official.convert(path, os.path.join(root, f"fold{fold}"), precision="float32",
                                                  fold_batch_norm=fold, log=lambda _: None)
                print(f"\n{size}, float32, batch norm {'folded' if fold else 'kept'}: converted and exported in "
                      f"{time.perf_counter() - start:.1f} s")
                worst = {k: 0.0 for k in keys}
                for image in paths[:FLAGS.release_images] if size == "release" else paths:
                    data = open(image, "rb").read() if image.endswith(".jpg") else \
                        cv2.imencode(".png", cv2.imread(image))[1].tobytes()
                    found = parity(ck, export, data)
                    worst = {k: max(worst[k], found[k]) for k in keys}
                    print(f"  {os.path.basename(image):16s} {found['proposals']} proposals ({found['swapped']} at "
                          f"another rank), {found['candidates']} candidates, people {found['people'][0]} served / "
                          f"{found['people'][1]} release; " + ", ".join(f"{k} {found[k]:.2g}" for k in keys),
                          flush=True)
                print("  worst: " + ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))


if __name__ == "__main__":
    define_flags()
    cli.run(main)
