"""Drawing poses with matplotlib (Agg, no display needed): 2D and 3D skeletons, and anchor-pose sheets.

No pyplot and no global backend switch: figures are :class:`matplotlib.figure.Figure` objects with an
Agg canvas, so importing this module never changes the backend of an interactive session.

Colours follow the body side from the joint names: bones whose joints are both ``left_*`` get
:data:`SIDE_COLOURS` ``"left"``, both ``right_*`` get ``"right"``, others (the hip and shoulder lines,
the neck) ``"centre"``. Left and right are the person's own sides.

Conventions: 2D points are in image order (x right, y down) in any unit (pixels or box-normalised); the
caller owns the axes limits, except that :func:`draw_pose_2d` can flip the y axis for a plain plot.
3D points are in camera axes (x right, y down, z away from the camera); :func:`draw_pose_3d` plots
camera ``(x, z, -y)`` on the matplotlib ``(x, y, z)`` axes, so an upright person stands up on screen and
the default view looks at them from the camera, slightly from above and from the side.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lcr_tf.contracts import anchor_layout, geometry
from lcr_tf.contracts import skeleton as skeleton_lib

SIDE_COLOURS: Dict[str, str] = {"left": "tab:blue", "right": "tab:red", "centre": "tab:green"}
# Matplotlib 3D view (degrees) for draw_pose_3d: azimuth -90 looks along the camera's +z.
DEFAULT_VIEW_3D = (15.0, -70.0)


def bone_sides(skeleton="lcr13") -> Tuple[str, ...]:
    """The side of each bone of ``skeleton.bones``: "left", "right" or "centre"."""
    skel = skeleton_lib.get_skeleton(skeleton)
    sides = []
    for a, b in skel.bones:
        names = (skel.joint_names[a], skel.joint_names[b])
        if all(n.startswith("left_") for n in names):
            sides.append("left")
        elif all(n.startswith("right_") for n in names):
            sides.append("right")
        else:
            sides.append("centre")
    return tuple(sides)


def _check_pose(pose: np.ndarray, skel: skeleton_lib.Skeleton, dims: int, name: str) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (skel.num_joints, dims):
        raise ValueError(f"{name} has shape {pose.shape}, expected ({skel.num_joints}, {dims}) for "
                         f"skeleton {skel.name!r}")
    return pose


def _visible_bones(skel, mask):
    return [(i, a, b) for i, (a, b) in enumerate(skel.bones) if mask[a] and mask[b]]


def draw_pose_2d(ax, pose2d: np.ndarray, skeleton="lcr13", mask: Optional[np.ndarray] = None,
                 colours: Optional[Dict[str, str]] = None, linewidth: float = 2.0,
                 marker_size: float = 3.0, alpha: float = 1.0, invert_y: bool = False) -> List:
    """Draws one 2D skeleton on matplotlib axes.

    Args:
      ax: a 2D matplotlib Axes (e.g. one showing an image with ``imshow``, whose y axis already points
        down).
      pose2d: (J, 2) points, x right, y down, any unit.
      skeleton: joint set (name or Skeleton); bones from ``skeleton.bones``.
      mask: (J,) bool, joints to draw (default: the finite ones); a bone needs both joints.
      colours: side -> colour, overriding :data:`SIDE_COLOURS`.
      invert_y: flip the axes' y direction so y grows downwards (for axes that show no image).
    Returns:
      The Line2D artists: one per drawn bone (in ``skeleton.bones`` order), then the joint markers.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    pose2d = _check_pose(pose2d, skel, 2, "pose2d")
    mask = np.all(np.isfinite(pose2d), axis=-1) if mask is None else np.asarray(mask, bool)
    cols = {**SIDE_COLOURS, **(colours or {})}
    sides = bone_sides(skel)
    artists = []
    for i, a, b in _visible_bones(skel, mask):
        artists += ax.plot(pose2d[[a, b], 0], pose2d[[a, b], 1], "-", color=cols[sides[i]],
                           linewidth=linewidth, alpha=alpha, solid_capstyle="round")
    if marker_size > 0 and mask.any():
        artists += ax.plot(pose2d[mask, 0], pose2d[mask, 1], "o", color="black", markersize=marker_size,
                           alpha=alpha, linestyle="none")
    if invert_y and not ax.yaxis_inverted():
        ax.invert_yaxis()
    return artists


def draw_pose_3d(ax, pose3d: np.ndarray, skeleton="lcr13", colours: Optional[Dict[str, str]] = None,
                 linewidth: float = 2.0, marker_size: float = 3.0, alpha: float = 1.0,
                 view: Optional[Tuple[float, float]] = DEFAULT_VIEW_3D, radius: Optional[float] = 1.0
                 ) -> List:
    """Draws one 3D skeleton on matplotlib 3D axes (``fig.add_subplot(..., projection="3d")``).

    Args:
      pose3d: (J, 3) camera axes (x right, y down, z away), e.g. metres, body-centred. Plotted as
        matplotlib (x, y, z) = camera (x, z, -y): up on screen is -y.
      view: (elevation, azimuth) degrees for ``ax.view_init``, or None to leave the view alone.
      radius: half-size of the cubic plotting volume around the pose's mid-range, or None to leave the
        limits alone; the axes get an equal aspect either way.
    Returns:
      The Line3D artists, one per bone in ``skeleton.bones`` order (non-finite joints skipped), then the
      joint markers.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    pose3d = _check_pose(pose3d, skel, 3, "pose3d")
    mask = np.all(np.isfinite(pose3d), axis=-1)
    shown = np.stack([pose3d[:, 0], pose3d[:, 2], -pose3d[:, 1]], axis=-1)
    cols = {**SIDE_COLOURS, **(colours or {})}
    sides = bone_sides(skel)
    artists = []
    for i, a, b in _visible_bones(skel, mask):
        artists += ax.plot(shown[[a, b], 0], shown[[a, b], 1], shown[[a, b], 2], "-",
                           color=cols[sides[i]], linewidth=linewidth, alpha=alpha)
    if marker_size > 0 and mask.any():
        artists += ax.plot(shown[mask, 0], shown[mask, 1], shown[mask, 2], "o", color="black",
                           markersize=marker_size, alpha=alpha, linestyle="none")
    if radius is not None and mask.any():
        mid = 0.5 * (shown[mask].min(axis=0) + shown[mask].max(axis=0))
        ax.set_xlim(mid[0] - radius, mid[0] + radius)
        ax.set_ylim(mid[1] - radius, mid[1] + radius)
        ax.set_zlim(mid[2] - radius, mid[2] + radius)
    ax.set_box_aspect((1, 1, 1))
    if view is not None:
        ax.view_init(elev=view[0], azim=view[1])
    ax.set_xlabel("x")
    ax.set_ylabel("z (depth)")
    ax.set_zlabel("-y (up)")
    return artists


def new_figure(width_in: float, height_in: float, dpi: float = 100.0) -> Figure:
    """A Figure with an Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _shown_anchors(anchor_set, max_anchors: int) -> np.ndarray:
    """Indices of the full-body anchors to show: the most populated first when sizes are known."""
    k = anchor_set.num_anchors
    sizes = anchor_set.metadata.get("cluster_sizes")
    if sizes is not None and len(sizes) == k:
        order = np.argsort(-np.asarray(sizes), kind="stable")
    else:
        order = np.arange(k)
    return order[:max_anchors]


def plot_anchors(anchor_set, path: str, max_anchors: int = 24, num_3d: int = 4, columns: int = 12,
                 dpi: float = 100.0) -> Sequence[int]:
    """Writes a PNG sheet of anchor-poses.

    Three panels: the 2D full-body anchors in their unit box (dashed), the matching upper-body anchors in
    theirs (the lower body hangs below the box), and the first ``num_3d`` of the shown anchors in 3D.
    Each 2D cell is drawn with the aspect ratio of the anchor's box in metres, so the pose keeps its true
    proportions although its coordinates are box-normalised. Cells are titled with the class number (see
    :mod:`lcr_tf.poses.anchors`); when the metadata has ``cluster_sizes`` the most populated anchors are shown,
    with their size.

    Args:
      anchor_set: a :class:`lcr_tf.poses.anchors.AnchorSet`.
      path: output PNG file.
      max_anchors: at most this many anchors per 2D panel.
    Returns:
      The anchor indices (0..K-1) shown.
    """
    if max_anchors < 1 or columns < 1 or num_3d < 0:
        raise ValueError(f"need max_anchors >= 1, columns >= 1, num_3d >= 0; got {max_anchors}, "
                         f"{columns}, {num_3d}")
    k = anchor_set.num_anchors
    skel = anchor_set.skeleton
    shown = _shown_anchors(anchor_set, max_anchors)
    sizes = anchor_set.metadata.get("cluster_sizes")
    sizes = sizes if sizes is not None and len(sizes) == k else None
    num_3d = min(num_3d, len(shown))
    cols = min(columns, len(shown))
    rows = -(-len(shown) // cols)
    proj = geometry.orthographic_project(anchor_set.pose3d[shown].astype(np.float64))
    panels = (("full-body", anchor_set.pose2d[shown], anchor_layout.full_body_class(shown),
               geometry.pose_box(proj)),
              ("upper-body", anchor_set.pose2d[shown + k], anchor_layout.upper_body_class(shown, k),
               geometry.upper_body_box(proj, skeleton=skel)))
    # One y range per panel, so the upper-body cells show the hanging legs at a common scale.
    y_ranges = [(min(-0.1, float(p[..., 1].min()) - 0.05), max(1.1, float(p[..., 1].max()) + 0.05))
                for _, p, _, _ in panels]
    # Both 2D panels get the row height of the taller range, so full-body poses are not drawn smaller.
    row_height = max(hi - lo for lo, hi in y_ranges)
    heights = [rows * row_height] * 2 + ([2.0] if num_3d else [])
    cell_w = 0.9
    fig = new_figure(cols * cell_w, sum(heights) * 1.35 * cell_w + 0.6, dpi)
    outer = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.12, top=0.95, bottom=0.02,
                             left=0.02, right=0.98)
    fig.suptitle(f"{k} anchor-poses ({anchor_set.num_classes} classes incl. background), skeleton "
                 f"{skel.name}; classes 1..{k} full-body, {k + 1}..{2 * k} upper-body", fontsize=8)
    for panel, (label, poses, classes, boxes) in enumerate(panels):
        grid = outer[panel].subgridspec(rows, cols, wspace=0.05, hspace=0.25)
        y_lo, y_hi = y_ranges[panel]
        box_size = boxes[:, 2:] - boxes[:, :2]
        for i, (pose, cls) in enumerate(zip(poses, classes)):
            ax = fig.add_subplot(grid[i // cols, i % cols])
            ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor="0.5", linestyle="--",
                                   linewidth=0.8))
            draw_pose_2d(ax, pose, skel, linewidth=1.2, marker_size=1.5)
            ax.set_xlim(min(-0.1, float(pose[:, 0].min()) - 0.05), max(1.1, float(pose[:, 0].max()) + 0.05))
            ax.set_ylim(y_hi, y_lo)  # y down, as in the image
            ax.set_aspect(box_size[i, 1] / box_size[i, 0], adjustable="box")
            ax.set_axis_off()
            title = f"{label} {int(cls)}" if i == 0 else f"{int(cls)}"
            if sizes is not None:
                title += f"\nn={sizes[shown[i]]}"
            ax.set_title(title, fontsize=5, pad=1)
    if num_3d:
        grid = outer[2].subgridspec(1, num_3d, wspace=0.0)
        for i, a in enumerate(shown[:num_3d]):
            ax = fig.add_subplot(grid[0, i], projection="3d")
            extent = np.ptp(anchor_set.pose3d[a], axis=0).max()
            draw_pose_3d(ax, anchor_set.pose3d[a], skel, linewidth=1.5, marker_size=2.0,
                         radius=0.6 * float(extent))
            ax.set_title(f"class {int(anchor_layout.full_body_class(a))} in 3D", fontsize=6)
            ax.set_xticklabels([])
            ax.set_yticklabels([])
            ax.set_zticklabels([])
            for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
                axis.label.set_size(5)
    fig.savefig(path, format="png", dpi=dpi)
    return [int(a) for a in shown]


# --------------------------------------------------------------------------------------------------
# Overlays drawn into the image's pixels (OpenCV)
# --------------------------------------------------------------------------------------------------

#: Colours (RGB) of the people of an overlay, in turn.
PERSON_COLOURS: Tuple[Tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128))


def draw_people(rgb, boxes, poses2d, scores, skeleton="lcr13",
                colours: Sequence[Tuple[int, int, int]] = PERSON_COLOURS,
                box_colour: Optional[Tuple[int, int, int]] = None,
                joint_colour: Tuple[int, int, int] = (0, 0, 0), thickness: Optional[int] = None,
                font_scale: Optional[float] = None, score_inside: bool = False) -> np.ndarray:
    """An (H, W, 3) RGB image (float [0, 255] or uint8) -> a uint8 copy with each person's pose box, 2D
    skeleton, joints and score drawn (cv2).

    Args:
      boxes: (N, 4) xyxy pixels; poses2d: (N, J, 2) pixels (NaN joints drawn at 0); scores: (N,).
      colours: the people's bone colours, in turn; the box and the score take the person's colour too
        unless ``box_colour`` is given.
      thickness: line width unit (bones ``thickness + 1``, joint radius ``thickness + 1``); None scales
        it with the image, one per 300 pixels of its longer side.
      font_scale: of the score; None: ``0.4 * thickness``.
      score_inside: the score inside the box's top-left corner, else above the box (inside when the box
        touches the top of the image).
    """
    import cv2

    skel = skeleton_lib.get_skeleton(skeleton)
    canvas = np.ascontiguousarray(np.clip(np.asarray(rgb), 0, 255).astype(np.uint8))
    thick = thickness if thickness is not None else max(1, int(round(max(canvas.shape[:2]) / 300)))
    scale = 0.4 * thick if font_scale is None else font_scale
    for i, (box, pose, score) in enumerate(zip(boxes, poses2d, scores)):
        colour = tuple(colours[i % len(colours)])
        frame = tuple(box_colour) if box_colour is not None else colour
        points = np.round(np.nan_to_num(np.asarray(pose, np.float64))).astype(int)
        box = np.round(np.asarray(box, np.float64)).astype(int)
        cv2.rectangle(canvas, (box[0], box[1]), (box[2], box[3]), frame, 1)
        for a, b in skel.bones:
            cv2.line(canvas, tuple(points[a]), tuple(points[b]), colour, thick + 1, cv2.LINE_AA)
        for p in points:
            cv2.circle(canvas, tuple(p), thick + 1, tuple(joint_colour), -1)
        text = f"{float(score):.2f}"
        if score_inside:
            origin = (box[0] + 2, max(box[1] + 10, 10))
        else:
            (_, text_h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            origin = (box[0] + 2, max(box[1] - 4, text_h + 2))
        cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, frame, thick, cv2.LINE_AA)
    return canvas
