"""Synthetic images on disk: image encoding, the JSON ground truth, a contact sheet, and a whole set
rendered into a folder (:func:`render_dataset`)."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional, Sequence

import cv2
import numpy as np

from lcr_tf.contracts import atomic_files
from lcr_tf.synthetic.presets import SKELETON, RenderConfig
from lcr_tf.synthetic.rasteriser import RenderedImage
from lcr_tf.synthetic.scene import render_image

IMAGE_FORMATS = ("jpeg", "png")

def encode_image(image: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """Encodes an (H, W, 3) uint8 RGB image as JPEG (``quality`` 0-100) or PNG bytes."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {fmt!r}; expected one of {IMAGE_FORMATS}")
    if not 0 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality must be in [0, 100], got {quality}")
    bgr = np.ascontiguousarray(image[..., ::-1])  # OpenCV encoders expect BGR channel order
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return buf.tobytes()


def ground_truth_record(rendered: RenderedImage, file_name: str, index: int, seed: int) -> dict:
    """JSON-ready ground truth of one image (pixels rounded to 1e-3, metres to 1e-5)."""
    return {
        "file": file_name, "index": int(index), "seed": int(seed),
        "height": int(rendered.image.shape[0]), "width": int(rendered.image.shape[1]),
        "num_people": rendered.num_people,
        "intrinsics": np.round(rendered.intrinsics.astype(np.float64), 3).tolist(),
        "pose2d": np.round(rendered.pose2d.astype(np.float64), 3).tolist(),
        "pose3d": np.round(rendered.pose3d.astype(np.float64), 5).tolist(),
        "pose3d_camera": np.round(rendered.pose3d_camera.astype(np.float64), 5).tolist(),
        "in_image": rendered.in_image.tolist(),
        "visible": rendered.visible.tolist(),
        "corpus_index": rendered.corpus_index.tolist(),
        "body_scale": np.round(rendered.body_scale.astype(np.float64), 5).tolist(),
    }


def write_contact_sheet(renders: Sequence[RenderedImage], path: str, columns: int = 4,
                        cell_inches: float = 2.2, dpi: float = 100.0) -> None:
    """PNG grid of images with their 2D skeletons: visible joints filled, occluded ones hollow, joints
    outside the image not marked (bones are drawn between every pair of joints and clipped)."""
    from lcr_tf.poses import viz

    if not renders:
        raise ValueError("no image for the contact sheet")
    cols = min(columns, len(renders))
    rows = -(-len(renders) // cols)
    title_inches = 0.3
    fig = viz.new_figure(cols * cell_inches, rows * cell_inches + title_inches, dpi)
    fig.suptitle("synthetic images: filled dots visible joints, hollow dots occluded joints", fontsize=8,
                 y=1.0 - 0.1 * title_inches / (rows * cell_inches + title_inches))
    grid = fig.add_gridspec(rows, cols, left=0.005, right=0.995, bottom=0.005, wspace=0.02, hspace=0.02,
                            top=1.0 - title_inches / (rows * cell_inches + title_inches))
    for i, r in enumerate(renders):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        h, w = r.image.shape[:2]
        # The extent puts pixel i over [i, i+1), the labels' convention (imshow's default centres it on i).
        ax.imshow(r.image, interpolation="bilinear", extent=(0, w, h, 0))
        for p in range(r.num_people):
            viz.draw_pose_2d(ax, r.pose2d[p], SKELETON, linewidth=0.9, marker_size=0, alpha=0.9)
            vis, occ = r.visible[p], r.in_image[p] & ~r.visible[p]
            ax.plot(r.pose2d[p, vis, 0], r.pose2d[p, vis, 1], "o", markersize=2.6, color="yellow",
                    markeredgecolor="black", markeredgewidth=0.4, linestyle="none")
            ax.plot(r.pose2d[p, occ, 0], r.pose2d[p, occ, 1], "o", markersize=2.8, markerfacecolor="none",
                    markeredgecolor="white", markeredgewidth=0.7, linestyle="none")
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_axis_off()
    fig.savefig(path, format="png", dpi=dpi)


def render_dataset(poses3d: np.ndarray, num_images: int, seed: int, output_dir: str,
                   config: RenderConfig = RenderConfig(), contact_sheet: Optional[str] = None,
                   sheet_images: int = 12, quality: int = 90) -> dict:
    """Renders images 0..num_images-1 of set ``seed`` into ``output_dir``: ``NNNNNN.jpg`` files and
    ``ground_truth.json`` (a list of :func:`ground_truth_record`; an empty scene has ``num_people`` 0 and
    empty lists), plus an optional contact sheet of the first ``sheet_images``. Returns a summary dict:
    ``num_images``, ``num_people``, ``num_empty`` (images without people) and timings."""
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    os.makedirs(output_dir, exist_ok=True)
    records, sheet, times, people, empty = [], [], [], 0, 0
    for index in range(num_images):
        start = time.perf_counter()
        rendered = render_image(poses3d, index, seed, config)
        times.append(time.perf_counter() - start)
        name = f"{index:06d}.jpg"
        atomic_files.write_bytes(os.path.join(output_dir, name), encode_image(rendered.image, "jpeg", quality))
        records.append(ground_truth_record(rendered, name, index, seed))
        people += rendered.num_people
        empty += rendered.num_people == 0
        if len(sheet) < sheet_images:
            sheet.append(rendered)
    # Written last and whole: its presence says the folder's images are complete.
    atomic_files.write_json(os.path.join(output_dir, "ground_truth.json"), {
        "seed": int(seed), "config": dataclasses.asdict(config),
        "conventions": "pose2d pixels (x right, y down, pixel i covers [i, i+1)); pose3d metres, "
                       "camera axes (x right, y down, z away), body-centred; pose3d_camera = "
                       "pose3d + translation; intrinsics fx, fy, cx, cy",
        "joints": list(SKELETON.joint_names), "images": records})
    if contact_sheet:
        write_contact_sheet(sheet, contact_sheet)
    return {"num_images": num_images, "num_people": people, "num_empty": int(empty),
            "median_render_ms": 1e3 * float(np.median(times)), "total_render_s": float(np.sum(times))}

