r"""Command line of the synthetic renderer (:mod:`lcr_tf.synthetic`, paper Sec 4.1, Fig 8d).

Usage::

    python -m beam_jobs.render_synthetic --num_images=N --seed=S --output_dir=DIR [--poses=poses.npz] \
        [--height=H --width=W] [--min_people=A --max_people=B] [--empty_fraction=F] \
        [--contact_sheet=sheet.png]

Writes ``DIR/NNNNNN.jpg`` and ``DIR/ground_truth.json`` (:func:`lcr_tf.synthetic.render_dataset`), and an
optional contact sheet. Image ``i`` depends only on ``(poses, i, seed, config)``; the scene model, the
drawing and the ground-truth conventions (2D labels in :mod:`lcr_tf.contracts.geometry`'s pixel
convention) are described in :mod:`lcr_tf.synthetic`. The images are rendered in one process, in order:
there is no Beam pipeline here (``beam_jobs.build_tfrecords --dataset=synthetic`` renders in parallel on
Beam workers).
"""

from __future__ import annotations

from typing import List

from lcr_tf import synthetic


def define_flags(flag_values=None) -> None:
    """Defines the command-line flags (on demand, so importing this module defines none)."""
    from absl import flags
    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_integer("num_images", 16, "Number of images to render (indices 0..N-1).", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Seed of the image set; image i depends only on (poses, i, seed, "
                         "config).", lower_bound=0, flag_values=fv)
    flags.DEFINE_string("output_dir", None, "Folder for NNNNNN.jpg and ground_truth.json.", flag_values=fv)
    flags.DEFINE_string("poses", None, "A poses.npz LCR-13 corpus (beam_jobs.mocap_poses); default: "
                        "--body_model_poses poses of lcr_tf.poses.body_model sampled with --seed.", flag_values=fv)
    flags.DEFINE_integer("body_model_poses", 20000, "Corpus size when --poses is not given.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("height", synthetic.RenderConfig.height, "Image height in pixels.", lower_bound=8,
                         flag_values=fv)
    flags.DEFINE_integer("width", synthetic.RenderConfig.width, "Image width in pixels.", lower_bound=8,
                         flag_values=fv)
    flags.DEFINE_enum("preset", "wild", sorted(synthetic.PRESETS), "Scene distribution: wild (crowds, small "
                      "and cut people, occluders), clear (1-3 large people) or studio (1-2 large whole people, plain "
                      "backgrounds); see PRESETS.", flag_values=fv)
    flags.DEFINE_integer("min_people", None, "Fewest people per image (default: the preset's).", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("max_people", None, "Most people per image (default: the preset's).", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_float("empty_fraction", synthetic.RenderConfig.empty_fraction, "Share of the images rendered "
                       "with no people (background only: pure negatives); image i is empty when floor((i+1) f) > "
                       "floor(i f), so floor(N f) of N images are, spread evenly; the others are the same "
                       "images as without it.", lower_bound=0.0, upper_bound=1.0, flag_values=fv)
    flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of the written images.", lower_bound=0,
                         upper_bound=100, flag_values=fv)
    flags.DEFINE_string("contact_sheet", None, "Optional PNG: a grid of the first images with their 2D "
                        "skeletons (visible joints filled, occluded hollow).", flag_values=fv)
    flags.DEFINE_integer("sheet_images", 12, "Number of images on the contact sheet.", lower_bound=1,
                         flag_values=fv)


def main(argv: List[str]) -> None:
    from absl import app, flags

    from lcr_tf.poses import body_model, pose_corpus

    fv = flags.FLAGS
    if fv.output_dir is None:
        raise app.UsageError("--output_dir is required")
    try:
        people = {k: fv[k].value for k in ("min_people", "max_people") if fv[k].value is not None}
        config = synthetic.preset_config(fv.preset, height=fv.height, width=fv.width,
                                         empty_fraction=fv.empty_fraction, **people)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    if fv.poses:
        poses3d = pose_corpus.load(fv.poses, skeleton=synthetic.SKELETON.name).poses3d
    else:
        poses3d = body_model.sample_poses(num_poses=fv.body_model_poses, seed=fv.seed).poses3d
    summary = synthetic.render_dataset(poses3d, fv.num_images, fv.seed, fv.output_dir, config,
                                       fv.contact_sheet, fv.sheet_images, fv.jpeg_quality)
    print(f"wrote {summary['num_images']} images with {summary['num_people']} people "
          f"({summary['num_empty']} images without people) to {fv.output_dir} "
          f"(median {summary['median_render_ms']:.1f} ms per image to render)"
          + (f"; contact sheet {fv.contact_sheet}" if fv.contact_sheet else ""))


if __name__ == "__main__":
    from lcr_tf.contracts import cli

    define_flags()
    cli.run(main)
