"""Runs an exported LCR-Net SavedModel on images, folders or videos.

    python -m lcr_tf.predict --saved_model=export/lcr --input=photo.jpg|folder|clip.mp4 --output_dir=out

``--saved_model`` is a version folder (holding ``saved_model.pb``) or the base folder of versions (the
highest is used, as TF Serving does). ``--input`` is an image, a video (by extension:
:data:`VIDEO_EXTENSIONS`) or a folder, searched recursively and read in sorted order (its videos are
read as videos). For each image, or each frame of a video in order, ``--output_dir`` gets:

* ``<name>.json``: the people found (schema below);
* ``<name>.png``: the image with each person's 2D skeleton, pose box and score;
* ``<name>_3d.png``: the people's 3D poses placed in the camera frame (Fig 15 of the paper).

The pictures show the people scoring above ``--draw_min_score``; the JSON holds all those above
``--min_score``.

``<name>`` is the input's path relative to the folder given (``/`` replaced by ``__``), without its
extension; a video frame adds ``_frame000123`` (0-based frame index). Images are JPEG or PNG files: each
one's size is read from its header first (:mod:`lcr_tf.serving.image_header`), and a file that is not a
JPEG or PNG, whose header is broken, or that is over the limits the SavedModel holds (pixels per side and
per image, set at export) is reported on stderr with the reason and skipped without being decoded, as is
a file that then fails to decode; the rest go on. When no input at all could be read, the command ends
with one error line (the first file and its reason) and exit status 1. A progress bar on stderr counts
the inputs. Every output file is written through a temporary name, so a killed run leaves whole files.

JSON schema (one object per image or frame)::

    {"source": path, "frame": int or null, "image_size": {"height": H, "width": W},
     "skeleton": name, "joint_names": [J names],
     "units": {...}, "frames": {...},          # what each field is measured in, stated in words
     "people": [{"score": s, "box_xyxy_px": [4], "pose2d_px": [J][2],
                 "pose3d_body_centred_m": [J][3], "pose3d_camera_m": [J][3],
                 "translation_m": [3]}, ...]}   # sorted by decreasing score

The people's keys are those of the detection signatures' outputs (:mod:`lcr_tf.contracts.serving`).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Dict, Iterator, List, Optional, Tuple

from absl import flags

from lcr_tf.contracts import atomic_files, cli, serving
from lcr_tf.serving import image_header

FLAGS = flags.FLAGS
_DEFINED: List[str] = []

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

UNITS = {serving.POSE2D: "pixels of the original image", serving.BOX: "pixels of the original image",
         serving.POSE3D: "metres", serving.POSE3D_CAMERA: "metres", serving.TRANSLATION: "metres",
         serving.SCORE: "PPI score: sum of the (rescored) classification probabilities of the person's mode"}
FRAMES = {"2d": "x right, y down, origin at the top-left corner of the image",
          serving.POSE3D: "camera axes (x right, y down, z away from the camera), origin at the body "
                          "centre (mean of the hips and shoulders)",
          serving.POSE3D_CAMERA: "camera frame (x right, y down, z away), origin at the camera centre; placed by "
                                 "least squares on the reprojection error (default camera: focal max(H, W) px, "
                                 "principal point at the image centre, unless intrinsics were given)",
          serving.TRANSLATION: "body centre in the camera frame"}
# Decimals written per person key: 0.01 px, 0.1 mm.
_DECIMALS = {serving.BOX: 2, serving.POSE2D: 2, serving.POSE3D: 4, serving.POSE3D_CAMERA: 4, serving.TRANSLATION: 4}


def define_flags() -> None:
    """Defines the flags (only when run as a program)."""
    before = set(FLAGS)
    flags.DEFINE_string("saved_model", None, "SavedModel of lcr_tf.export: a version folder or the base "
                        "folder of versions (the highest is used).")
    flags.DEFINE_string("input", None, "An image, a video file or a folder of them (searched recursively).")
    flags.DEFINE_string("output_dir", None, "Folder for the JSON, the 2D overlays and the 3D plots.")
    flags.DEFINE_float("min_score", 0.0, "Write only people scoring above this.")
    flags.DEFINE_float("draw_min_score", 0.1, "Draw (2D overlay and 3D plot) only people scoring above this.")
    flags.DEFINE_list("intrinsics", [], "Camera fx,fy,cx,cy in pixels of the input images for the 3D "
                      "placement (default: the model's default camera).")
    flags.DEFINE_integer("max_frames", 0, "Frames read per video (0: all).", lower_bound=0)
    flags.DEFINE_integer("frame_step", 1, "Read every n-th video frame.", lower_bound=1)
    flags.DEFINE_boolean("plots_3d", True, "Write the 3D plot of each image.")
    _DEFINED[:] = sorted(set(FLAGS) - before)


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------

class Predictor:
    """A loaded SavedModel of :mod:`lcr_tf.export` and its metadata.

    Args:
      path: version folder or base folder of versions.
      intrinsics: (4,) ``fx, fy, cx, cy`` pixels for every image, or None for the default camera.
    """

    def __init__(self, path: str, intrinsics=None):
        import tensorflow as tf

        from lcr_tf.serving import export as export_lib

        self.path = export_lib.latest_version_dir(path)
        self.module = tf.saved_model.load(self.path)
        self.skeleton = self.module.skeleton.numpy().decode()
        self.joint_names = [n.decode() for n in self.module.joint_names.numpy()]
        self.intrinsics = None if intrinsics is None else [float(v) for v in intrinsics]
        self._encoded = self.module.signatures[serving.SERVING_DEFAULT]
        self._options = self.module.signatures[serving.DETECT_WITH_OPTIONS]
        self._float = self.module.signatures[serving.DETECT_FLOAT]
        self._defaults = {name: self.module.defaults[name] for name in self.module.defaults}
        self.limits = image_header.Limits.of_saved_model(self.module)

    def _option_inputs(self, batch: int) -> Dict:
        import tensorflow as tf
        inputs = {name: tf.fill([batch], var) for name, var in self._defaults.items()}
        inputs[serving.INTRINSICS] = tf.constant([self.intrinsics] * batch, tf.float32)
        return inputs

    def on_bytes(self, data: bytes) -> Dict:
        """One encoded image -> dict of NumPy outputs of that image (``num_detections`` () ...).
        Raises ``tf.errors.InvalidArgumentError`` for bytes that are not a JPEG or PNG or are over the
        model's limits (:attr:`limits`)."""
        import tensorflow as tf
        images = tf.constant([data])
        out = (self._encoded(**{serving.IMAGES: images}) if self.intrinsics is None
               else self._options(**{serving.IMAGES: images}, **self._option_inputs(1)))
        return {k: v.numpy()[0] for k, v in out.items()}

    def on_frame(self, rgb) -> Dict:
        """One (H, W, 3) uint8 RGB frame -> as :meth:`on_bytes`."""
        import numpy as np
        import tensorflow as tf
        images = tf.constant(np.asarray(rgb, np.float32)[None])
        if self.intrinsics is None:
            out = self._float(**{serving.IMAGES: images})
        else:
            # Only the encoded-image signature takes options: a lossless PNG carries the frame there.
            out = self._options(**{serving.IMAGES: tf.image.encode_png(np.asarray(rgb, np.uint8))[None]},
                                **self._option_inputs(1))
        return {k: v.numpy()[0] for k, v in out.items()}


def to_record(out: Dict, source: str, frame: Optional[int], image_size: Tuple[int, int], skeleton: str,
              joint_names: List[str], min_score: float = 0.0) -> Dict:
    """The JSON object of one image (module docstring) from its outputs."""
    import numpy as np

    n = int(out[serving.NUM_DETECTIONS])
    people = []
    for i in range(n):
        score = float(out[serving.SCORE][i])
        if score <= min_score:
            continue
        person = {serving.SCORE: score}
        person.update({key: np.round(out[key][i], _DECIMALS[key]).tolist() for key in serving.PERSON_KEYS[1:]})
        people.append(person)
    return {"source": source, "frame": frame,
            "image_size": {"height": int(image_size[0]), "width": int(image_size[1])},
            "skeleton": skeleton, "joint_names": list(joint_names), "units": UNITS, "frames": FRAMES,
            "people": people}


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------

def plot_3d(record: Dict, path: str) -> None:
    """The people's camera-frame 3D poses in one matplotlib 3D plot, saved to ``path`` (PNG)."""
    import numpy as np

    from lcr_tf.poses import viz

    fig = viz.new_figure(5.0, 5.0)
    ax = fig.add_subplot(1, 1, 1, projection="3d")
    poses = [np.asarray(p["pose3d_camera_m"]) for p in record["people"]]
    for i, pose in enumerate(poses):
        colour = "#%02x%02x%02x" % viz.PERSON_COLOURS[i % len(viz.PERSON_COLOURS)]
        viz.draw_pose_3d(ax, pose, record["skeleton"], colours={"left": colour, "right": colour,
                                                                 "centre": colour}, radius=None)
    if poses:
        # matplotlib axes show camera (x, z, -y) (lcr_tf.poses.viz.draw_pose_3d); one cube holds everybody.
        shown = np.concatenate([np.stack([p[:, 0], p[:, 2], -p[:, 1]], -1) for p in poses])
        shown = shown[np.all(np.isfinite(shown), -1)]
        if len(shown):
            mid = 0.5 * (shown.min(0) + shown.max(0))
            radius = max(1.0, 0.5 * float(np.max(shown.max(0) - shown.min(0))))
            ax.set_xlim(mid[0] - radius, mid[0] + radius)
            ax.set_ylim(mid[1] - radius, mid[1] + radius)
            ax.set_zlim(mid[2] - radius, mid[2] + radius)
    ax.set_title(f"{len(poses)} people, camera frame (m)")
    with atomic_files.replacing(path) as tmp:
        fig.savefig(tmp)


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------

def list_inputs(path: str) -> List[str]:
    """The files of ``--input``: itself, or a folder's files (recursive, sorted, hidden ones skipped)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--input {path!r}: no such file or folder")
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in files if not f.startswith(".")]
    return sorted(found)


def output_name(path: str, base: str) -> str:
    rel = os.path.relpath(path, base) if os.path.isdir(base) else os.path.basename(path)
    return os.path.splitext(rel)[0].replace(os.sep, "__")


def is_video(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def video_frames(path: str, max_frames: int = 0, step: int = 1) -> Iterator[Tuple[int, object]]:
    """(index, (H, W, 3) uint8 RGB) frames of a video in order (cv2.VideoCapture)."""
    import cv2

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f"{path}: cannot be opened as a video")
    index, read = 0, 0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            if index % step == 0:
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                read += 1
                if max_frames and read >= max_frames:
                    break
            index += 1
    finally:
        capture.release()


class Progress:
    """A one-line progress bar on a stream (stderr)."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = max(total, 1), 0, width
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()

    def step(self, label: str = "") -> None:
        self.done += 1
        filled = int(self.width * min(self.done, self.total) / self.total)
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                          f"{rate:.1f}/s {label[-40:]:<40}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _write(record: Dict, rgb, out_dir: str, name: str, plots_3d: bool, draw_min_score: float) -> None:
    import cv2

    # Every output goes through a temporary name: a killed run leaves whole files or none.
    atomic_files.write_json(os.path.join(out_dir, name + ".json"), record, indent=1)
    record = dict(record, people=[p for p in record["people"] if p[serving.SCORE] > draw_min_score])
    from lcr_tf.poses import viz
    people = record["people"]
    drawn = viz.draw_people(rgb, [p[serving.BOX] for p in people], [p[serving.POSE2D] for p in people],
                            [p[serving.SCORE] for p in people], record["skeleton"])
    with atomic_files.replacing(os.path.join(out_dir, name + ".png")) as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{out_dir}: cannot write {name}.png")
    if plots_3d:
        plot_3d(record, os.path.join(out_dir, name + "_3d.png"))


def run(saved_model: str, input_path: str, output_dir: str, min_score: float = 0.0, intrinsics=None,
        max_frames: int = 0, frame_step: int = 1, plots_3d: bool = True, draw_min_score: float = 0.0,
        stream=None) -> Dict:
    """Predicts on every input (module docstring).

    Returns:
      dict of ``written`` (list of output names, in processing order) and ``skipped`` (list of
      ``(path, reason)``).
    """
    import cv2
    import tensorflow as tf

    predictor = Predictor(saved_model, intrinsics)
    files = list_inputs(input_path)
    os.makedirs(output_dir, exist_ok=True)
    stream = stream or sys.stderr
    written, skipped = [], []
    progress = Progress(len(files), stream)
    for path in files:
        name = output_name(path, input_path)
        try:
            if is_video(path):
                for index, rgb in video_frames(path, max_frames, frame_step):
                    out = predictor.on_frame(rgb)
                    record = to_record(out, path, index, rgb.shape[:2], predictor.skeleton,
                                       predictor.joint_names, min_score)
                    frame_name = f"{name}_frame{index:06d}"
                    _write(record, rgb, output_dir, frame_name, plots_3d, draw_min_score)
                    written.append(frame_name)
            else:
                with open(path, "rb") as f:
                    data = f.read()
                # Refused here, the image is neither sent nor decoded for the overlay.
                image_header.check(data, path, predictor.limits)
                out = predictor.on_bytes(data)
                rgb = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
                record = to_record(out, path, None, rgb.shape[:2], predictor.skeleton, predictor.joint_names,
                                   min_score)
                _write(record, rgb, output_dir, name, plots_3d, draw_min_score)
                written.append(name)
        except image_header.ImageRefused as e:
            skipped.append((path, e.reason))
            stream.write(f"\nskipped {path}: {e.reason}\n")
        except (tf.errors.InvalidArgumentError, ValueError, cv2.error) as e:
            reason = cli.op_error_text(str(getattr(e, "message", e))) or type(e).__name__
            skipped.append((path, reason))
            stream.write(f"\nskipped {path}: not an image or video ({reason[:120]})\n")
        progress.step(os.path.basename(path))
    progress.close()
    return {"written": written, "skipped": skipped}


def main(argv: List[str]) -> None:
    for name in ("saved_model", "input", "output_dir"):
        if not getattr(FLAGS, name):
            print(f"error: --{name} is required", file=sys.stderr)
            sys.exit(2)
    intrinsics = None
    if FLAGS.intrinsics:
        try:
            intrinsics = [float(v) for v in FLAGS.intrinsics]
        except ValueError:
            intrinsics = []
        if len(intrinsics) != 4 or intrinsics[0] <= 0 or intrinsics[1] <= 0:
            print(f"error: --intrinsics must be fx,fy,cx,cy with positive focal lengths, got "
                  f"{','.join(FLAGS.intrinsics)}", file=sys.stderr)
            sys.exit(2)
    try:
        result = run(FLAGS.saved_model, FLAGS.input, FLAGS.output_dir, FLAGS.min_score, intrinsics,
                     FLAGS.max_frames, FLAGS.frame_step, FLAGS.plots_3d, FLAGS.draw_min_score)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if result["skipped"] and not result["written"]:
        path, reason = result["skipped"][0]
        more = f" (and {len(result['skipped']) - 1} more file(s), listed above)" if len(result["skipped"]) > 1 else ""
        print(f"predict: error: nothing could be read: {path}: {reason}{more}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote {len(result['written'])} results to {FLAGS.output_dir}; skipped {len(result['skipped'])} "
          f"file(s)", flush=True)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
