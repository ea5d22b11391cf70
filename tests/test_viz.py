"""Tests of lcr_tf.poses.viz: what gets drawn where, and the anchor sheet PNG."""

import struct

import matplotlib
import numpy as np
import pytest
from matplotlib import image as mpl_image
from matplotlib.colors import to_rgba

from lcr_tf.contracts import skeleton as skeleton_lib
from lcr_tf.poses import anchors, viz

# Standing LCR-13 pose, camera axes (y down), metres: head at negative y, ankles at positive y.
STANDING = np.array([
    [-0.10, 1.00, 0.05], [0.10, 1.00, -0.05], [-0.10, 0.50, 0.02], [0.10, 0.50, 0.00],
    [-0.10, 0.20, 0.00], [0.10, 0.20, 0.00], [-0.30, 0.20, 0.10], [0.30, 0.20, -0.10],
    [-0.25, -0.10, 0.00], [0.25, -0.10, 0.00], [-0.20, -0.20, 0.00], [0.20, -0.20, 0.00],
    [0.00, -0.50, 0.03],
])


def test_bone_sides_lcr13():
    skel = skeleton_lib.get_skeleton("lcr13")
    sides = viz.bone_sides(skel)
    assert len(sides) == len(skel.bones)
    by_name = {(skel.joint_names[a], skel.joint_names[b]): s for (a, b), s in zip(skel.bones, sides)}
    assert by_name[("left_hip", "left_knee")] == "left"
    assert by_name[("right_elbow", "right_wrist")] == "right"
    assert by_name[("left_hip", "right_hip")] == "centre"
    assert by_name[("left_shoulder", "head")] == "centre"
    # 4 limb bones and one torso side per body side; the hip line, shoulder line and two neck bones.
    assert (sides.count("left"), sides.count("right"), sides.count("centre")) == (5, 5, 4)


def test_draw_pose_2d():
    skel = skeleton_lib.get_skeleton("lcr13")
    fig = viz.new_figure(3, 3)
    ax = fig.add_subplot(1, 1, 1)
    pose = STANDING[:, :2] * 100 + 200  # pixels
    artists = viz.draw_pose_2d(ax, pose, skel, invert_y=True)
    assert len(artists) == len(skel.bones) + 1
    sides = viz.bone_sides(skel)
    for line, (a, b), side in zip(artists, skel.bones, sides):
        np.testing.assert_allclose(line.get_xdata(), pose[[a, b], 0])
        np.testing.assert_allclose(line.get_ydata(), pose[[a, b], 1])
        assert to_rgba(line.get_color()) == to_rgba(viz.SIDE_COLOURS[side])
    np.testing.assert_allclose(artists[-1].get_xdata(), pose[:, 0])
    assert ax.yaxis_inverted()
    # A masked (or NaN) joint removes its bones and its marker.
    pose_nan = pose.copy()
    pose_nan[0] = np.nan  # right ankle: one bone (right knee - right ankle)
    ax2 = fig.add_subplot(1, 2, 1)
    artists = viz.draw_pose_2d(ax2, pose_nan, skel, colours={"left": "black"})
    assert len(artists) == len(skel.bones) - 1 + 1 and len(artists[-1].get_xdata()) == 12
    assert not ax2.yaxis_inverted()
    assert to_rgba(artists[sides.index("left")].get_color()) == to_rgba("black")
    with pytest.raises(ValueError, match=r"\(12, 2\), expected \(13, 2\) for skeleton 'lcr13'"):
        viz.draw_pose_2d(ax, pose[:12], skel)


def test_draw_pose_3d_upright():
    skel = skeleton_lib.get_skeleton("lcr13")
    fig = viz.new_figure(3, 3)
    ax = fig.add_subplot(1, 1, 1, projection="3d")
    artists = viz.draw_pose_3d(ax, STANDING, skel, radius=1.0)
    assert len(artists) == len(skel.bones) + 1
    for line, (a, b) in zip(artists, skel.bones):
        xs, ys, zs = line.get_data_3d()
        # Plotted (x, y, z) = camera (x, z, -y).
        np.testing.assert_allclose(xs, STANDING[[a, b], 0])
        np.testing.assert_allclose(ys, STANDING[[a, b], 2])
        np.testing.assert_allclose(zs, -STANDING[[a, b], 1])
    xs, ys, zs = artists[-1].get_data_3d()
    assert np.argmax(zs) == 12 and np.argmin(zs) in (0, 1)  # head on top, ankles at the bottom
    lims = np.array([ax.get_xlim(), ax.get_ylim(), ax.get_zlim()])
    np.testing.assert_allclose(lims[:, 1] - lims[:, 0], 2.0)  # the cube of radius 1
    np.testing.assert_allclose(lims[2].mean(), 0.5 * (0.5 - 1.0))  # centred on the pose's height range
    with pytest.raises(ValueError, match="pose3d has shape"):
        viz.draw_pose_3d(ax, STANDING[:, :2], skel)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_plot_anchors(tmp_path):
    rng = np.random.default_rng(0)
    centres = STANDING[None] + rng.normal(0, 0.05, (6, 13, 3))
    sizes = [5, 50, 7, 30, 1, 2]
    anchor_set = anchors.from_centres(centres, "lcr13", {"cluster_sizes": sizes})
    path = str(tmp_path / "sheet.png")
    shown = viz.plot_anchors(anchor_set, path, max_anchors=4, num_3d=2)
    assert shown == [1, 3, 2, 0]  # the most populated first
    width, height = png_size(path)
    assert width > 200 and height > 200
    image = mpl_image.imread(path)
    assert image.shape[:2] == (height, width)
    assert image[..., :3].std() > 0.05  # not a blank page
    # Without sizes: the first anchors, and no 3D panel.
    plain = anchors.from_centres(centres, "lcr13")
    assert viz.plot_anchors(plain, str(tmp_path / "plain.png"), max_anchors=3, num_3d=0) == [0, 1, 2]
    assert png_size(str(tmp_path / "plain.png"))[0] > 100
    with pytest.raises(ValueError, match="max_anchors"):
        viz.plot_anchors(plain, str(tmp_path / "x.png"), max_anchors=0)


def test_no_global_backend_change():
    before = matplotlib.get_backend()
    fig = viz.new_figure(1, 1)
    assert type(fig.canvas).__name__ == "FigureCanvasAgg"
    assert matplotlib.get_backend() == before
