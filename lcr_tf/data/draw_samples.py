r"""Draws samples of the input pipeline, to check augmentation and labels by eye.

Usage::

    python -m lcr_tf.data.draw_samples --input='shards/train-*.tfrecord' --output=samples.png \
        [--num=8] [--seed=0] [--image_size=256] [--anchors=anchors.npz] [--noaugment]

Each panel is one image as the network receives it (after scale, crop, flip and colour jitter, or the
letterbox resize with ``--noaugment``), with every person's pose box (dashed), 2D skeleton and anchor
class. Bones of the person's right side are red, left side blue (:data:`lcr_tf.poses.viz.SIDE_COLOURS`):
after a flip a person's right arm must still be red and lie on the arm that is now on the other side.
Joints that are not visible (occluded, or cut off by the crop) are drawn faint. The title gives the
image id, the zoom, "flipped" when mirrored, and the people dropped by the crop or by ``max_people``.
The pixel grid is drawn exactly: pixel (i, j) covers [i, i + 1) x [j, j + 1).
"""

from __future__ import annotations

import math

import numpy as np
from absl import flags
from matplotlib.patches import Rectangle

from lcr_tf.contracts import batch_keys, cli
from lcr_tf.poses import viz

FLAGS = flags.FLAGS


def define_flags():
    """Defines the flags; called only when run as a program, so importing the module defines none."""
    flags.DEFINE_string("input", None, "TFRecord shards: a glob or comma-separated globs.")
    flags.DEFINE_string("output", None, "Output PNG file.")
    flags.DEFINE_integer("num", 8, "Number of samples drawn.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Seed of the shuffle and the augmentation (same seed, same picture).")
    flags.DEFINE_integer("image_size", 256, "Side S of the network input in pixels.", lower_bound=2)
    flags.DEFINE_integer("max_people", 16, "People slots per image; more are dropped, smallest first.",
                         lower_bound=1)
    flags.DEFINE_string("anchors", None, "anchors.npz: re-assign the anchor class of flipped people "
                        "(without it they show class -1, 'to be assigned').")
    flags.DEFINE_bool("augment", True, "Draw training samples (scale, crop, flip, jitter, shuffled); "
                      "--noaugment draws evaluation samples (letterbox only, in file order).")
    flags.DEFINE_integer("columns", 4, "Panels per row.", lower_bound=1)


def draw_samples(file_pattern: str, output: str, num: int = 8, seed: int = 0, image_size: int = 256,
                 max_people: int = 16, anchors=None, augment: bool = True, columns: int = 4,
                 dpi: float = 100.0) -> int:
    """Writes a PNG of ``num`` pipeline samples (fewer if the shards hold fewer); returns how many.

    Args:
      file_pattern: shards (see :func:`lcr_tf.data.pipeline.list_shards`).
      anchors: optional :class:`lcr_tf.poses.anchors.AnchorSet` for the flipped people's classes.
      augment: training samples (True) or evaluation samples (False).
    """
    from lcr_tf.data import pipeline

    # Batches of one, so that a training batch never drops an incomplete remainder.
    config = pipeline.InputConfig(image_size=image_size, max_people=max_people, batch_size=1,
                                  shuffle_buffer=max(64, 4 * num))
    ds = pipeline.make_dataset(file_pattern, config, training=augment, anchors=anchors, seed=seed,
                               deterministic=True)
    batch = next(iter(ds.unbatch().batch(num).take(1)), None)
    if batch is None:
        raise ValueError(f"the shards {file_pattern!r} hold no record")
    batch = {k: v.numpy() for k, v in batch.items()}
    count = batch[batch_keys.IMAGE].shape[0]
    cols = min(columns, count)
    rows = math.ceil(count / cols)
    panel = max(2.0, image_size / dpi)  # inches: about one image pixel per figure pixel
    fig = viz.new_figure(cols * panel, rows * (panel + 0.45) + 0.4, dpi)
    fig.suptitle(f"{'augmented' if augment else 'letterboxed'} samples, {image_size}x{image_size}; "
                 f"bones: red = person's right, blue = left; faint joints: not visible", fontsize=8)
    for n in range(count):
        ax = fig.add_subplot(rows, cols, n + 1)
        _draw_one(ax, {k: v[n] for k, v in batch.items()}, image_size)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1.0 - 0.45 / (rows * (panel + 0.45)),
                        wspace=0.05, hspace=0.25)
    fig.savefig(output, format="png", dpi=dpi)
    return count


def _draw_one(ax, sample, size: int) -> None:

    image = np.clip(sample[batch_keys.IMAGE], 0, 255).astype(np.uint8)
    ax.imshow(image, extent=(0, size, size, 0), interpolation="nearest")
    for p in np.flatnonzero(sample[batch_keys.PERSON_MASK]):
        x1, y1, x2, y2 = sample[batch_keys.BOXES][p]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="yellow",
                               linestyle="--", linewidth=1.0))
        pose = sample[batch_keys.POSE2D][p]
        viz.draw_pose_2d(ax, pose, "lcr13", linewidth=1.0, marker_size=1.5, alpha=0.35)
        viz.draw_pose_2d(ax, pose, "lcr13", mask=sample[batch_keys.VISIBLE][p], linewidth=1.5, marker_size=2.5)
        ax.text(max(x1, 0.0), max(y1, 0.0), f"c={sample[batch_keys.ANCHOR_CLASS][p]}", color="yellow",
                fontsize=6, va="top", ha="left",
                bbox=dict(facecolor="black", alpha=0.5, pad=0.5, linewidth=0))
    sx = sample[batch_keys.TRANSFORM][0]
    dropped = int(sample[batch_keys.NUM_PEOPLE_OUTSIDE]) + int(sample[batch_keys.NUM_PEOPLE_OVER_MAX])
    title = (f"{sample[batch_keys.IMAGE_ID].decode('utf-8', 'replace')}  zoom {abs(sx):.2f}"
             f"{'  flipped' if sx < 0 else ''}" + (f"  dropped {dropped}" if dropped else ""))
    ax.set_title(title, fontsize=6, pad=2)
    ax.set_xlim(0, size)
    ax.set_ylim(size, 0)
    ax.set_axis_off()


def main(argv):
    anchor_set = None
    try:
        if FLAGS.anchors:
            from lcr_tf.poses import anchors as anchors_lib
            anchor_set = anchors_lib.load(FLAGS.anchors)
        count = draw_samples(FLAGS.input, FLAGS.output, num=FLAGS.num, seed=FLAGS.seed,
                             image_size=FLAGS.image_size, max_people=FLAGS.max_people, anchors=anchor_set,
                             augment=FLAGS.augment, columns=FLAGS.columns)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"draw_samples: error: {e}") from None
    print(f"wrote {count} samples to {FLAGS.output}")


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("input", "output"))
