"""Anchor-poses (paper Sec 4.1 and 4.2): K-means centres of oriented 3D poses, and the class layout.

An anchor-pose is the centre of a K-means cluster of 3D poses. The poses are *oriented*: each corpus pose
is turned to several random camera views before clustering, so the same body pose seen from the front
and from the side falls into different clusters and gives different anchors. Poses are body-centred
(:func:`lcr_tf.contracts.skeleton.centre_poses`) in camera axes (x right, y down, z away from the camera), metres.

"Dealing with truncation" doubles the anchors: for each of the K full-body anchors there is an
upper-body anchor with the *same 3D pose* whose 2D pose is placed so that the upper body alone fills the
box. The full-body pose is still regressed for both, so a network can "hallucinate" the legs of a person
cut by the image border.

Class layout: :mod:`lcr_tf.contracts.anchor_layout` (K full-body anchors, then K upper-body ones,
class = row + 1, class 0 the background). Row ``k + K`` has the same 3D pose as row ``k``.

2D anchors are in box-normalised coordinates (:func:`lcr_tf.contracts.geometry.normalise_to_box`): the orthographic
projection of the 3D anchor (:func:`lcr_tf.contracts.geometry.orthographic_project`, x right, y down) divided by
its box, the full-body pose box (:func:`lcr_tf.contracts.geometry.pose_box`) for ``k < K``, the upper-body box
(:func:`lcr_tf.contracts.geometry.upper_body_box`) for ``k >= K``, where the knees and ankles of an upright anchor
fall below the box (y > 1).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from lcr_tf.contracts import anchor_layout, geometry, npz_io
from lcr_tf.contracts import skeleton as skeleton_lib

ARRAYS = ("pose3d", "pose2d", "upper_body")
FORMAT_VERSION = 1

# pose2d is a function of pose3d; a stored file may differ from a recomputation by float32 rounding only.
_POSE2D_TOLERANCE = 1e-4
# A centred pose has its centre at 0 up to float32 rounding of values of order 1 m.
_CENTRE_TOLERANCE_M = 1e-4
# Independent random streams derived from the one user seed (numpy SeedSequence spawn keys).
SEED_STREAMS = ("views", "kmeans", "subsample")


def seed_stream(seed: int, name: str) -> np.random.SeedSequence:
    """The named random stream (one of :data:`SEED_STREAMS`) of a user seed.

    Each stage draws from its own stream, so changing e.g. the corpus subsampling never changes the
    views drawn for a given pose count.
    """
    return np.random.SeedSequence(int(seed), spawn_key=(SEED_STREAMS.index(name),))


def _fail(where: str, field: str, message: str):
    raise ValueError(f"{where}: field {field!r} {message}")


def _check_arrays(pose3d, pose2d, upper_body, metadata: Mapping[str, Any], where: str
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, skeleton_lib.Skeleton]:
    """Validates the arrays of an anchor set; returns them as float32/float32/bool and the skeleton.

    Every error is a ValueError that starts with ``where`` (a file path or "AnchorSet") and names the
    offending field.
    """
    if "skeleton" not in metadata:
        _fail(where, "skeleton", "is missing from the metadata")
    if not isinstance(metadata["skeleton"], str) or metadata["skeleton"] not in skeleton_lib.SKELETONS:
        _fail(where, "skeleton", f"is {metadata['skeleton']!r}, not a known skeleton "
                                 f"({sorted(skeleton_lib.SKELETONS)})")
    skel = skeleton_lib.get_skeleton(metadata["skeleton"])
    j = skel.num_joints
    arrays = {}
    for name, value, last in (("pose3d", pose3d, 3), ("pose2d", pose2d, 2)):
        value = np.asarray(value)
        if not np.issubdtype(value.dtype, np.floating):
            _fail(where, name, f"has dtype {value.dtype}, expected float32")
        if value.ndim != 3 or value.shape[1:] != (j, last) or value.shape[0] == 0 or value.shape[0] % 2:
            _fail(where, name, f"has shape {value.shape}, expected (2K, {j}, {last}) with K >= 1 "
                               f"(skeleton {skel.name!r})")
        if not np.all(np.isfinite(value)):
            bad = int(np.argmax(~np.all(np.isfinite(value), axis=(1, 2))))
            _fail(where, name, f"holds NaN or inf (anchor {bad})")
        arrays[name] = value.astype(np.float32)
    pose3d, pose2d = arrays["pose3d"], arrays["pose2d"]
    skeleton_lib.check_metres(pose3d, skel, f"{where}: pose3d")
    if pose2d.shape[0] != pose3d.shape[0]:
        _fail(where, "pose2d", f"has {pose2d.shape[0]} anchors but pose3d has {pose3d.shape[0]}")
    k = pose3d.shape[0] // 2
    upper_body = np.asarray(upper_body)
    if upper_body.dtype != np.bool_ or upper_body.shape != (2 * k,):
        _fail(where, "upper_body", f"has dtype {upper_body.dtype} and shape {upper_body.shape}, "
                                   f"expected bool ({2 * k},)")
    if upper_body[:k].any() or not upper_body[k:].all():
        _fail(where, "upper_body", f"must be False for anchors 0..{k - 1} and True for {k}..{2 * k - 1}")
    if "num_anchors" in metadata and metadata["num_anchors"] != k:
        _fail(where, "num_anchors", f"is {metadata['num_anchors']} but the arrays hold K={k} anchors")
    if not np.array_equal(pose3d[:k], pose3d[k:]):
        bad = int(np.argmax(np.any(pose3d[:k] != pose3d[k:], axis=(1, 2))))
        _fail(where, "pose3d", f"of upper-body anchor {k + bad} differs from full-body anchor {bad}")
    centre = skeleton_lib.body_centre(pose3d.astype(np.float64), skel)[:, 0]
    off = np.linalg.norm(centre, axis=-1)
    if off.max() > _CENTRE_TOLERANCE_M:
        _fail(where, "pose3d", f"anchor {int(np.argmax(off))} is not body-centred "
                               f"(centre {off.max():.3g} m from the origin)")
    expected = _project_anchors(pose3d[:k].astype(np.float64), skel)
    err = np.abs(expected - pose2d).max(axis=(1, 2))
    if err.max() > _POSE2D_TOLERANCE:
        _fail(where, "pose2d", f"of anchor {int(np.argmax(err))} disagrees with the box-normalised "
                               f"projection of its pose3d (max difference {err.max():.3g})")
    return pose3d, pose2d, upper_body.copy(), skel


def _project_anchors(pose3d: np.ndarray, skel: skeleton_lib.Skeleton) -> np.ndarray:
    """(K, J, 3) body-centred metres -> (2K, J, 2) box-normalised: full-body boxes, then upper-body."""
    proj = geometry.orthographic_project(pose3d)
    full = geometry.normalise_to_box(proj, geometry.pose_box(proj))
    upper = geometry.normalise_to_box(proj, geometry.upper_body_box(proj, skeleton=skel))
    return np.concatenate([full, upper], axis=0)


@dataclasses.dataclass(frozen=True)
class AnchorSet:
    """The 2K anchor-poses of a classifier with ``2K + 1`` classes (layout in the module docstring).

    Attributes (read-only arrays):
      pose3d: (2K, J, 3) float32, metres, body-centred, camera axes (x right, y down, z away);
        ``pose3d[k + K] == pose3d[k]``.
      pose2d: (2K, J, 2) float32, box-normalised (the box is [0, 1]^2, x right, y down): the
        orthographic projection of ``pose3d`` in its full-body pose box for ``k < K``, in its
        upper-body box for ``k >= K``.
      upper_body: (2K,) bool, False for the first K anchors, True for the last K.
      metadata: JSON-able dict; ``skeleton`` (a :mod:`lcr_tf.contracts.skeleton` name) is required.
    """

    pose3d: np.ndarray
    pose2d: np.ndarray
    upper_body: np.ndarray
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        pose3d, pose2d, upper_body, _ = _check_arrays(self.pose3d, self.pose2d, self.upper_body,
                                                      self.metadata, "AnchorSet")
        for name, value in (("pose3d", pose3d), ("pose2d", pose2d), ("upper_body", upper_body)):
            value = np.array(value, copy=True)
            value.flags.writeable = False
            object.__setattr__(self, name, value)
        object.__setattr__(self, "metadata", dict(self.metadata))
        self.metadata["num_anchors"] = self.num_anchors

    @property
    def num_anchors(self) -> int:
        """K, the number of full-body anchors (half of the stored anchors)."""
        return self.pose3d.shape[0] // 2

    @property
    def num_classes(self) -> int:
        """2K + 1: background, K full-body and K upper-body classes."""
        return anchor_layout.num_classes(self.num_anchors)

    @property
    def skeleton(self) -> skeleton_lib.Skeleton:
        return skeleton_lib.get_skeleton(self.metadata["skeleton"])

    def save(self, path: str) -> None:
        """Writes ``path`` (``anchors.npz``: pose3d, pose2d, upper_body) and its JSON sidecar."""
        meta = dict(self.metadata)
        meta.setdefault("format_version", FORMAT_VERSION)
        npz_io.save(path, {"pose3d": self.pose3d, "pose2d": self.pose2d, "upper_body": self.upper_body},
                    meta)

    def assign_classes(self, poses3d: np.ndarray, full_body, chunk_size: int = 65536) -> np.ndarray:
        """The class of each pose: its nearest anchor in 3D, full-body or upper-body.

        The distance is the K-means one: squared Euclidean over the flattened body-centred pose. The
        poses are centred here (a no-op for centred poses), so a pose given at any position works.

        Args:
          poses3d: (N, J, 3) metres, camera axes, in the anchors' joint order.
          full_body: (N,) bool (or one bool for all): True -> class ``k + 1`` of the nearest anchor
            ``k``; False -> its upper-body class ``K + k + 1`` (same 3D, so the same ``k``).
          chunk_size: poses per matrix product, to bound memory (about ``chunk_size * K * 8`` bytes).
        Returns:
          (N,) int32 classes in ``1 .. 2K``.
        """
        poses3d = np.asarray(poses3d)
        skel = self.skeleton
        if poses3d.ndim != 3 or poses3d.shape[1:] != (skel.num_joints, 3):
            raise ValueError(f"poses3d has shape {poses3d.shape}, expected (N, {skel.num_joints}, 3)")
        n = poses3d.shape[0]
        full_body = np.asarray(full_body)
        if full_body.dtype != np.bool_ or full_body.shape not in ((), (n,)):
            raise ValueError(f"full_body must be a bool or a ({n},) bool array, got {full_body.dtype} "
                             f"{full_body.shape}")
        full_body = np.broadcast_to(full_body, (n,))
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        k_anchors = self.num_anchors
        centres = self.pose3d[:k_anchors].reshape(k_anchors, -1).astype(np.float64)
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; the first term is the same for every anchor.
        centre_sq = np.einsum("kd,kd->k", centres, centres)
        nearest = np.empty(n, dtype=np.int64)
        for start in range(0, n, chunk_size):
            chunk = poses3d[start:start + chunk_size].astype(np.float64)
            if not np.all(np.isfinite(chunk)):
                bad = start + int(np.argmax(~np.all(np.isfinite(chunk), axis=(1, 2))))
                raise ValueError(f"poses3d[{bad}] holds NaN or inf")
            flat = skeleton_lib.centre_poses(chunk, skel).reshape(chunk.shape[0], -1)
            nearest[start:start + chunk_size] = np.argmin(centre_sq[None, :] - 2.0 * flat @ centres.T,
                                                          axis=1)
        return np.where(full_body, anchor_layout.full_body_class(nearest),
                        anchor_layout.upper_body_class(nearest, k_anchors)).astype(np.int32)


def load(path: str) -> AnchorSet:
    """Reads an ``anchors.npz`` and its sidecar.

    Raises:
      FileNotFoundError: no such file.
      ValueError: unreadable file, missing array, or an invalid field; the message names the file and
        the field.
    """
    arrays, meta = npz_io.load(path, ARRAYS)
    _check_arrays(arrays["pose3d"], arrays["pose2d"], arrays["upper_body"], meta, path)
    return AnchorSet(arrays["pose3d"], arrays["pose2d"], arrays["upper_body"], meta)


def from_centres(centres3d: np.ndarray, skeleton="lcr13", metadata: Optional[Mapping[str, Any]] = None
                 ) -> AnchorSet:
    """Builds the 2K anchors from K 3D cluster centres.

    Args:
      centres3d: (K, J, 3) metres, camera axes. They are body-centred here (exact K-means centres of
        centred poses already are, up to rounding).
      skeleton: joint set of the centres (name or :class:`lcr_tf.contracts.skeleton.Skeleton`).
      metadata: extra sidecar fields; ``skeleton`` and ``num_anchors`` are set here.
    Returns:
      An :class:`AnchorSet` with anchors ``0..K-1`` full-body and ``K..2K-1`` upper-body.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    centres3d = np.asarray(centres3d, dtype=np.float64)
    if centres3d.ndim != 3 or centres3d.shape[1:] != (skel.num_joints, 3) or centres3d.shape[0] == 0:
        raise ValueError(f"centres3d has shape {centres3d.shape}, expected (K, {skel.num_joints}, 3), K >= 1")
    if not np.all(np.isfinite(centres3d)):
        raise ValueError("centres3d holds NaN or inf")
    pose3d = skeleton_lib.centre_poses(centres3d, skel).astype(np.float32)
    pose2d = _project_anchors(pose3d.astype(np.float64), skel).astype(np.float32)
    k = pose3d.shape[0]
    meta = dict(metadata or {})
    meta.update(skeleton=skel.name, num_anchors=k)
    return AnchorSet(np.concatenate([pose3d, pose3d]), pose2d,
                     np.repeat(np.array([False, True]), k), meta)


def kmeans(x: np.ndarray, k: int, seed: int, max_iter: int = 300, tol: float = 1e-4,
           init_sample: Optional[int] = None, n_threads: Optional[int] = 2
           ) -> Tuple[np.ndarray, np.ndarray, float, int]:
    """K-means (Lloyd) with k-means++ seeding, by scikit-learn.

    With ``init_sample`` None this is ``KMeans(init="k-means++", n_init=1, random_state=seed,
    algorithm="lloyd")``. With ``init_sample = m < N``, k-means++ runs on ``m`` points drawn without
    replacement (seeded) and Lloyd iterations start from those centres on all N points. k-means++ costs
    about ``k * (2 + log k)`` distance computations per input point: for k = 200 and N = 10^6 on two
    cores it took 30-80 s (Lloyd iterations about 0.35 s each), against 4 s on a subsample of 10^5, and
    the final inertia came out the same (within 0.2%). The price: a group of poses holding less than
    about 1/m of the data is likely absent from the subsample and cannot get a seed of its own (the
    Lloyd iterations may still move a centre to it).

    Afterwards each centre is recomputed as the float64 mean of its points (one exact M-step with the
    final labels, summed in a fixed order), and the inertia is recomputed in float64, so the result
    does not depend on scikit-learn's float32 accumulation.

    Args:
      x: (N, D) points (cast to float32 for the iterations).
      k: number of clusters, 1 <= k <= N.
      seed: integer seed in [0, 2**32) for the seeding.
      max_iter: maximum Lloyd iterations.
      tol: scikit-learn's relative tolerance: stop when the squared centre shift summed over centres is
        below ``tol`` times the mean per-dimension variance of ``x``.
      init_sample: size of the k-means++ subsample, or None for all points.
      n_threads: OpenMP threads for the iterations (None: scikit-learn's default). scikit-learn adds the
        per-thread partial sums under a lock in arrival order; with one or two threads that order cannot
        change the float sum, with more, runs may differ in the last bits (and rarely in a label).
    Returns:
      centres (k, D) float32, labels (N,) int32, inertia (float: sum of squared distances of points to
      their centre), n_iter (Lloyd iterations run).
    Raises:
      ValueError: bad shapes, k out of range, NaN or inf in ``x`` (the first bad row is named).
    """
    from sklearn.cluster import KMeans, kmeans_plusplus  # heavy import, only when clustering
    from threadpoolctl import threadpool_limits

    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x must be a non-empty (N, D) array, got shape {x.shape}")
    n = x.shape[0]
    if int(k) != k or not 1 <= k <= n:
        raise ValueError(f"k={k} clusters need 1 <= k <= N, and there are N={n} points")
    k = int(k)
    x = np.ascontiguousarray(x, dtype=np.float32)
    finite = np.all(np.isfinite(x), axis=1)
    if not finite.all():
        raise ValueError(f"x[{int(np.argmax(~finite))}] holds NaN or inf")
    if init_sample is not None and init_sample < k:
        raise ValueError(f"init_sample={init_sample} must be at least k={k}")

    with threadpool_limits(limits=n_threads, user_api="openmp"):
        init = "k-means++"
        if init_sample is not None and init_sample < n:
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(n, size=init_sample, replace=False))
            init, _ = kmeans_plusplus(x[sample], k, random_state=seed)
        model = KMeans(n_clusters=k, init=init, n_init=1, max_iter=max_iter, tol=tol,
                       random_state=seed, algorithm="lloyd")
        model.fit(x)
    labels = model.labels_.astype(np.int32)
    centres = _cluster_means(x, labels, k, fallback=model.cluster_centers_)
    inertia = _inertia(x, labels, centres)
    return centres.astype(np.float32), labels, inertia, int(model.n_iter_)


def _cluster_means(x: np.ndarray, labels: np.ndarray, k: int, fallback: np.ndarray) -> np.ndarray:
    """(k, D) float64 mean of the points of each label; ``fallback`` rows for empty clusters."""
    counts = np.bincount(labels, minlength=k)
    # One bincount per feature (D is small): sequential float64 sums, the same on every run.
    sums = np.stack([np.bincount(labels, weights=x[:, d].astype(np.float64), minlength=k)
                     for d in range(x.shape[1])], axis=1)
    means = sums / np.maximum(counts, 1)[:, None]
    return np.where(counts[:, None] > 0, means, np.asarray(fallback, np.float64))


def _inertia(x: np.ndarray, labels: np.ndarray, centres: np.ndarray, chunk: int = 1 << 16) -> float:
    total = 0.0
    for start in range(0, x.shape[0], chunk):
        diff = x[start:start + chunk].astype(np.float64) - centres[labels[start:start + chunk]]
        total += float(np.einsum("nd,nd->", diff, diff))
    return total


def orient_poses(poses3d: np.ndarray, num_views: int, seed, skeleton="lcr13",
                 elevation_range_deg: Tuple[float, float] = geometry.DEFAULT_ELEVATION_RANGE_DEG,
                 chunk_size: int = 1 << 16) -> np.ndarray:
    """Turns every pose to ``num_views`` random camera views of its own.

    Views: azimuth uniform all round, elevation uniform in ``elevation_range_deg``
    (:func:`lcr_tf.contracts.geometry.random_view_rotations`), drawn for all poses at once from ``seed`` (an int
    or a ``SeedSequence``). Rotation is about the body centre; the result is re-centred anyway.

    Args:
      poses3d: (N, J, 3) metres, camera axes, body-centred.
    Returns:
      (N * V, J, 3) float32; row ``n * V + v`` is pose ``n`` in its view ``v``.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    poses3d = np.asarray(poses3d)
    if poses3d.ndim != 3 or poses3d.shape[1:] != (skel.num_joints, 3):
        raise ValueError(f"poses3d has shape {poses3d.shape}, expected (N, {skel.num_joints}, 3)")
    if int(num_views) != num_views or num_views < 1:
        raise ValueError(f"num_views must be a positive integer, got {num_views}")
    n, v = poses3d.shape[0], int(num_views)
    rotations = geometry.random_view_rotations(n * v, np.random.default_rng(seed),
                                               elevation_range_deg).reshape(n, v, 3, 3)
    out = np.empty((n, v, skel.num_joints, 3), dtype=np.float32)
    for start in range(0, n, chunk_size):
        stop = start + chunk_size
        turned = geometry.rotate(poses3d[start:stop, None].astype(np.float64), rotations[start:stop])
        out[start:stop] = skeleton_lib.centre_poses(turned, skel)
    return out.reshape(n * v, skel.num_joints, 3)


def cluster_poses(poses3d: np.ndarray, num_anchors: int, num_views: int, seed: int, skeleton="lcr13",
                  elevation_range_deg: Tuple[float, float] = geometry.DEFAULT_ELEVATION_RANGE_DEG,
                  max_iter: int = 300, tol: float = 1e-4, init_sample: Optional[int] = None,
                  n_threads: Optional[int] = 2, metadata: Optional[Mapping[str, Any]] = None
                  ) -> AnchorSet:
    """Anchor-poses of a corpus: orient (:func:`orient_poses`), K-means (:func:`kmeans`), 2K anchors.

    Args:
      poses3d: (N, J, 3) metres, camera axes, body-centred (a :class:`lcr_tf.poses.pose_corpus.PoseCorpus`).
      num_anchors: K, at most ``N * num_views``.
      seed: one integer; the views and the K-means seeding use separate streams of it
        (:func:`seed_stream`).
      Other arguments as in :func:`orient_poses` and :func:`kmeans`.
    Returns:
      The :class:`AnchorSet`; its metadata holds the parameters, K-means inertia and iterations, the
      cluster sizes (of full-body anchors 0..K-1) and the timings (seconds), plus ``metadata``.
    """
    skel = skeleton_lib.get_skeleton(skeleton)
    n_oriented = np.asarray(poses3d).shape[0] * int(num_views)
    if not 1 <= num_anchors <= n_oriented:
        raise ValueError(f"num_anchors={num_anchors} must be between 1 and the number of oriented poses "
                         f"N x V = {np.asarray(poses3d).shape[0]} x {num_views} = {n_oriented}")
    t0 = time.perf_counter()
    oriented = orient_poses(poses3d, num_views, seed_stream(seed, "views"), skel, elevation_range_deg)
    t1 = time.perf_counter()
    kmeans_seed = int(seed_stream(seed, "kmeans").generate_state(1, np.uint32)[0])
    centres, labels, inertia, n_iter = kmeans(oriented.reshape(n_oriented, -1), num_anchors, kmeans_seed,
                                              max_iter=max_iter, tol=tol, init_sample=init_sample,
                                              n_threads=n_threads)
    t2 = time.perf_counter()
    sizes = np.bincount(labels, minlength=num_anchors)
    meta = dict(metadata or {})
    rms_joint = float(np.sqrt(inertia / (n_oriented * skel.num_joints)))
    meta.update(
        views=int(num_views), seed=int(seed), elevation_range_deg=[float(e) for e in elevation_range_deg],
        num_oriented_poses=int(n_oriented),
        kmeans=dict(inertia_m2=inertia, rms_joint_distance_m=rms_joint,
                    iterations=n_iter, max_iter=int(max_iter), hit_max_iter=bool(n_iter >= max_iter),
                    tol=float(tol), init="k-means++",
                    init_sample=None if init_sample is None else int(init_sample), seed=kmeans_seed),
        cluster_sizes=sizes.tolist(),
        timing_s=dict(orient=round(t1 - t0, 3), kmeans=round(t2 - t1, 3)),
        class_layout="0 background; 1..K full-body anchors 0..K-1; K+1..2K upper-body anchors K..2K-1",
    )
    return from_centres(centres.reshape(num_anchors, skel.num_joints, 3), skel, meta)
