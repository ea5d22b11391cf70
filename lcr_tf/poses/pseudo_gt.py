"""Pseudo ground-truth 3D poses: masked nearest-neighbour search in a projected MoCap database (Sec 3.7).

A corpus of 3D poses is seen from many random virtual views and projected orthographically, giving a
database of 2D poses ``c_m`` with their oriented 3D poses ``C_m``. An annotated 2D pose ``q`` with some
joints missing is matched to the database entry whose 2D pose is closest once both are normalised
over the *query's annotated joints only* (eq 9). The match gives (a) a pseudo ground-truth 3D pose and
(b) a full 2D pose that completes the missing joints.

The distance
------------
With ``w`` the query's annotated mask (``w_j`` in {0, 1}), ``n = sum_j w_j`` and, for any 2D pose ``x``,

    m(x) = sum_j w_j x_j / n                        (centroid of the annotated joints)
    s(x) = sqrt(sum_j w_j |x_j - m(x)|^2)           (their root-sum-square spread)
    xbar_j = (x_j - m(x)) / s(x)                    (centred and scaled to unit norm)

the search minimises ``D(q, c) = sum_j w_j |qbar_j - cbar_j|^2`` over the database, and reports
``distance = sqrt(D)``: the Euclidean distance between the two unit-norm normalised poses, i.e. the
root-mean-square joint error divided by the root-mean-square distance of the joints from their centroid.
It lies in [0, 2], is 0 for a query that is a scaled and translated copy of an entry, and does not
depend on the query's pixel scale or position. There is no rotation alignment: the view is part of the
match (the orientation of the 3D pose is what the pseudo ground truth provides).

How the search is vectorised
----------------------------
Because ``sum_j w_j qbar_j = 0``, ``D = 2 - 2 <w qbar, c> / s(c)`` for the *uncentred* candidate ``c``,
and Lagrange's identity gives ``n s(c)^2 = sum_{j<k} w_j w_k |c_j - c_k|^2``. Both are linear in
per-candidate features that do not depend on the query, so for a batch of queries and a chunk of
candidates the two numbers come out of two matrix products:

    dot  = Qd (B, 2J)  @ Cd (2J, L)       Qd[b] = sqrt(n_b) w_b qbar_b, Cd = candidate coordinates
    pair = Qp (B, P')  @ Cp (P', L)       Qp[b] = (w_j w_k)_{j<k},      Cp = |c_j - c_k|^2, j < k

(``P = J (J - 1) / 2`` pairs, plus one row that adds a tiny constant, see below). The cosine
similarity is ``dot / sqrt(pair)`` (the ``sqrt(n_b)`` in ``Qd`` cancels the ``n`` of the identity) and
the nearest entry is its arg-max; the scan ranks by the signed squared cosine ``dot |dot| / pair``,
which orders candidates the same way without a square root. Summing non-negative pair terms (rather
than ``sum w |c|^2 - n |m|^2``) keeps the spread free of cancellation in float32. The products run in
float32 (BLAS through ``np.matmul``; an XLA-compiled TensorFlow version of the scan measured 1.3 to 2.5
times slower on a 2-core CPU); every chunk contributes its arg-max to a short list of ``shortlist``
candidates per query, which is re-ranked in float64 from the stored coordinates with the direct
formula for ``D``. Exact ties go to the lowest database index.

Queries that share a mask (every fully annotated person, say) need only one product: the pair sums
depend on the mask alone, so for a group of at least ``group_min`` such queries in a batch, the chunk's
coordinates are divided by ``sqrt(pair)`` once and ``Qd @ (Cd / sqrt(pair))`` is the cosine (about 2.5
times faster per query than the general path).

Exactness. The answer is the float64 minimum over the short list. It can differ from the exhaustive
float64 minimum only if two candidates of one chunk are within float32 rounding of each other
(cosines within ~1e-6), in which case the two distances agree to that precision. A candidate whose
annotated joints all coincide in 2D has no scale; it is excluded: the extra row adds ``epsilon``
(1e-10 of the database's mean full-pose pair sum, far below any real pose's spread) to ``pair``, so
its float32 cosine is rounding noise (below ~0.01), and the float64 re-ranking gives it an infinite
distance. A query whose best short-listed match is poor (``D > 1.5``, cosine below 0.25: the regime
where such noise could matter) or degenerate is searched again exhaustively in float64.

Memory
------
Stored: ``M (2J + P') 4`` bytes of candidate features (M = N V candidates; 424 bytes a candidate for
13 joints, 424 MB for 10^6), ``M 36`` bytes of rotations (float32 3x3) and the centred corpus
(``N J 3`` float64); the oriented 3D poses are never stored (a match's is recomputed from its pose and
rotation). A search works on ``batch_size`` queries at a time against one contiguous chunk of
``chunk_size`` candidates at a time and needs at most ``(2 batch_size + 2J) chunk_size 4`` bytes of
product buffers (4.2 MB at 256 x 2048) plus O(batch_size (J^2 + shortlist J)) for the queries,
whatever M.
"""

from __future__ import annotations

import dataclasses
from typing import List, Tuple

import numpy as np

from lcr_tf.contracts import geometry
from lcr_tf.contracts import skeleton as skeleton_lib

DEFAULT_NUM_VIEWS = 10
DEFAULT_CHUNK_SIZE = 2048
DEFAULT_BATCH_SIZE = 256
DEFAULT_SHORTLIST = 4
DEFAULT_GROUP_MIN = 8
# Fewest annotated joints a query may have. After centring and scaling, n 2D joints keep 2n - 3 degrees
# of freedom: two joints fix a single angle and three a triangle's shape (3 numbers), which a large
# database matches almost exactly with unrelated poses. Four joints (5 numbers, e.g. hips and shoulders,
# which give the torso's orientation) are the smallest set that says something about the 3D pose.
DEFAULT_MIN_JOINTS = 4
# The regularising constant added to each candidate's pair sum, relative to the database's mean
# full-pose pair sum (see the module docstring).
_EPSILON_FRACTION = 1e-10
# A short-listed winner with D above this (cosine below 0.25) triggers an exhaustive float64 search.
_FALLBACK_SQUARED_DISTANCE = 1.5
# Candidates are projected this many at a time while the database is built.
_BUILD_BLOCK = 1 << 16


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """The nearest database entry of each of B queries.

    Attributes:
      index: (B,) int64, the database index in [0, M); ``index = pose_index * num_views + view``.
      pose_index: (B,) int64, the corpus pose in [0, N).
      view: (B,) int64, which of that pose's views, in [0, num_views).
      distance: (B,) float64, ``sqrt(D)`` of the module docstring, in [0, 2].
      pose3d: (B, J, 3) float64 metres, the matched 3D pose rotated into the matched view: camera axes
        (x right, y down, z away), body-centred. Its x, y are the matched 2D pose in metres.
      pose2d: (B, J, 2) float64 pixels (x right, y down), the matched full 2D pose mapped into the
        query's frame: same centroid and spread over the query's annotated joints.
      completed2d: (B, J, 2) float64 pixels, the query with its missing joints taken from ``pose2d``.
    """

    index: np.ndarray
    pose_index: np.ndarray
    view: np.ndarray
    distance: np.ndarray
    pose3d: np.ndarray
    pose2d: np.ndarray
    completed2d: np.ndarray

    def __len__(self) -> int:
        return self.index.shape[0]


class PoseDatabase:
    """A corpus of 3D poses seen from random views, searchable by masked 2D pose (eq 9).

    Args:
      poses3d: (N, J, 3) metres, camera axes (x right, y down, z away), in the joint order of
        ``skeleton`` (a :attr:`lcr_tf.poses.pose_corpus.PoseCorpus.poses3d`). They are re-centred on the body
        centre (:func:`lcr_tf.contracts.skeleton.centre_poses`), so every output is body-centred.
      num_views: V, views per pose. The views are drawn independently for every pose (N V draws of
        :func:`lcr_tf.contracts.geometry.random_view_rotations`, azimuth uniform all round, elevation uniform in
        ``elevation_range_deg``), so the database covers N V viewpoints rather than V shared ones:
        consecutive MoCap frames, which are nearly the same pose, then add views instead of duplicates.
      seed: seeds ``np.random.default_rng``; the same corpus and seed give the same database, bit for bit.
      elevation_range_deg: (lo, hi) camera elevation range in degrees (positive: camera above).
      skeleton: a :mod:`lcr_tf.contracts.skeleton` name or object.
      chunk_size: candidates per matrix product; also the layout of the stored features (contiguous
        (F, chunk_size) blocks), so it is fixed at construction.
      batch_size: queries per matrix product.
      min_joints: queries with fewer annotated joints are refused (see :data:`DEFAULT_MIN_JOINTS`).
      shortlist: per-chunk winners kept per query for the float64 re-ranking.
      group_min: queries of a batch that share an annotated mask are scored together (one product
        instead of two, about 2.5x faster) when there are at least this many; 0 disables it.

    Candidate ``m`` is corpus pose ``m // V`` seen from its ``m % V``-th view; M = N V.
    """

    def __init__(self, poses3d: np.ndarray, num_views: int = DEFAULT_NUM_VIEWS, seed: int = 0, *,
                 elevation_range_deg: Tuple[float, float] = geometry.DEFAULT_ELEVATION_RANGE_DEG,
                 skeleton="lcr13", chunk_size: int = DEFAULT_CHUNK_SIZE,
                 batch_size: int = DEFAULT_BATCH_SIZE, min_joints: int = DEFAULT_MIN_JOINTS,
                 shortlist: int = DEFAULT_SHORTLIST, group_min: int = DEFAULT_GROUP_MIN):
        self.skeleton = skeleton_lib.get_skeleton(skeleton)
        j = self.skeleton.num_joints
        poses3d = np.asarray(poses3d)
        if poses3d.ndim != 3 or poses3d.shape[1:] != (j, 3):
            raise ValueError(f"poses3d must be (N, {j}, 3) for skeleton {self.skeleton.name!r}, "
                             f"got {poses3d.shape}")
        if poses3d.shape[0] == 0:
            raise ValueError("poses3d holds no pose")
        finite = np.all(np.isfinite(poses3d), axis=(1, 2))
        if not finite.all():
            raise ValueError(f"poses3d[{int(np.argmin(finite))}] holds NaN or inf")
        for name, value, lo in (("num_views", num_views, 1), ("chunk_size", chunk_size, 1),
                                ("batch_size", batch_size, 1), ("shortlist", shortlist, 1),
                                ("min_joints", min_joints, 2), ("group_min", group_min, 0)):
            if int(value) != value or value < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
        if min_joints > j:
            raise ValueError(f"min_joints={min_joints} exceeds the {j} joints of {self.skeleton.name!r}")
        self.num_views = int(num_views)
        self.seed = seed
        self.chunk_size = int(chunk_size)
        self.batch_size = int(batch_size)
        self.min_joints = int(min_joints)
        self.shortlist = int(shortlist)
        self.group_min = int(group_min)
        self.elevation_range_deg = tuple(float(a) for a in elevation_range_deg)

        self._poses3d = skeleton_lib.centre_poses(poses3d.astype(np.float64), self.skeleton)
        n = poses3d.shape[0]
        rng = np.random.default_rng(seed)
        # Stored as float32, and the database is projected with these rounded matrices, so the x, y of a
        # match's recomputed 3D pose round exactly to the 2D pose that was searched.
        self._rotations = geometry.random_view_rotations(
            n * self.num_views, rng, self.elevation_range_deg).astype(np.float32)
        self._pair_a, self._pair_b = np.triu_indices(j, 1)
        self._build_features()

    # ------------------------------------------------------------------ database
    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    @property
    def num_poses(self) -> int:
        return self._poses3d.shape[0]

    def __len__(self) -> int:
        """M = N V, the number of candidates."""
        return self._rotations.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes held by the database arrays (features, rotations, corpus)."""
        return self._cd.nbytes + self._cp.nbytes + self._rotations.nbytes + self._poses3d.nbytes

    def _build_features(self) -> None:
        """Projects every candidate and lays out the (F, chunk_size) feature blocks.

        ``_cd[k]``: (2J, chunk) float32 coordinates in metres, rows x_0..x_{J-1}, y_0..y_{J-1}.
        ``_cp[k]``: (P', chunk) float32, rows |c_a - c_b|^2 for the pairs (a, b), a < b, then a row
        of ones (scaled by epsilon on the query side), then zero rows up to a multiple of 8.
        The last block is zero-padded past M.
        """
        j, m, chunk = self.num_joints, len(self), self.chunk_size
        num_pairs = self._pair_a.size
        self._pair_rows = -(-(num_pairs + 1) // 8) * 8
        num_blocks = -(-m // chunk)
        self._cd = np.empty((num_blocks, 2 * j, chunk), np.float32)
        self._cp = np.empty((num_blocks, self._pair_rows, chunk), np.float32)
        self._cp[:, num_pairs] = 1.0
        self._cp[:, num_pairs + 1:] = 0.0
        pair_total = 0.0
        step = max(1, _BUILD_BLOCK // chunk)                      # whole blocks per projection call
        for k in range(0, num_blocks, step):
            blocks = min(step, num_blocks - k)
            coords = np.zeros((blocks * chunk, j, 2), np.float32)
            valid = min(blocks * chunk, m - k * chunk)
            coords[:valid] = self._project_indices(np.arange(k * chunk, k * chunk + valid))
            layout = self._cd[k:k + blocks].reshape(blocks, 2, j, chunk)
            layout[...] = coords.reshape(blocks, chunk, j, 2).transpose(0, 3, 2, 1)
            # Pair distances of the float32 coordinates: exactly 0 where two stored joints coincide.
            dx = layout[:, 0, self._pair_a] - layout[:, 0, self._pair_b]          # (blocks, P, chunk)
            dy = layout[:, 1, self._pair_a] - layout[:, 1, self._pair_b]
            pairs = self._cp[k:k + blocks, :num_pairs]
            np.multiply(dx, dx, out=pairs)
            pairs += dy * dy
            pair_total += float(pairs.sum(dtype=np.float64))                      # padding adds 0
        self._epsilon = _EPSILON_FRACTION * max(pair_total / m, np.finfo(np.float64).tiny)

    def _project_indices(self, index: np.ndarray) -> np.ndarray:
        """(L,) database indices -> (L, J, 2) float32 metres: the stored 2D poses."""
        return self._orient(index)[..., :2].astype(np.float32)

    def _orient(self, index: np.ndarray) -> np.ndarray:
        """(...,) database indices -> (..., J, 3) float64 oriented 3D poses (body-centred, metres)."""
        poses = self._poses3d[index // self.num_views]
        return geometry.rotate(poses, self._rotations[index].astype(np.float64))

    def _check_index(self, index) -> np.ndarray:
        index = np.asarray(index)
        if index.dtype.kind not in "iu":
            raise ValueError(f"database indices must be integers, got dtype {index.dtype}")
        bad = (index < 0) | (index >= len(self))
        if bad.any():
            raise ValueError(f"database index {int(index[bad].flat[0])} is outside [0, {len(self)})")
        return index.astype(np.int64)

    def project(self, index) -> Tuple[np.ndarray, np.ndarray]:
        """The database entries ``index`` ((...,) int in [0, M)).

        Returns:
          pose2d: (..., J, 2) float64 metres, the stored 2D pose (orthographic projection: x right,
            y down, body-centred), as searched.
          pose3d: (..., J, 3) float64 metres, the oriented 3D pose (camera axes, body-centred).
        """
        index = self._check_index(index)
        return self._stored_coords(index), self._orient(index)

    def _stored_coords(self, index: np.ndarray) -> np.ndarray:
        """(...,) indices -> (..., J, 2) float64 from the float32 feature blocks (what the search sees)."""
        block, col = index // self.chunk_size, index % self.chunk_size
        flat = self._cd[block, :, col]                                            # (..., 2J)
        j = self.num_joints
        return np.stack([flat[..., :j], flat[..., j:]], axis=-1).astype(np.float64)

    # ------------------------------------------------------------------ queries
    def validate_queries(self, poses2d: np.ndarray, visible: np.ndarray) -> List[Tuple[int, str]]:
        """Checks each query without raising for bad records.

        Args:
          poses2d: (B, J, 2) pixels (x right, y down). Unannotated joints may hold anything (NaN too).
          visible: (B, J) bool, True where a joint is annotated.
        Returns:
          ``[(query_index, reason), ...]`` for the queries that cannot be searched, in index order.
        Raises:
          ValueError: when the arrays' shapes are wrong (that is not a per-record problem).
        """
        poses2d, visible = self._check_shapes(poses2d, visible)
        count = visible.sum(axis=1)
        finite = np.all(np.isfinite(poses2d), axis=-1)
        bad_value = np.any(visible & ~finite, axis=1)
        usable = (visible & finite)[..., None]
        with np.errstate(invalid="ignore"):
            spread = (np.where(usable, poses2d, -np.inf).max(axis=1, initial=-np.inf)
                      - np.where(usable, poses2d, np.inf).min(axis=1, initial=np.inf))
        # Degenerate: every annotated joint at exactly the same point (no scale to normalise by).
        one_point = np.all(spread == 0, axis=-1)
        problems = []
        for b in np.flatnonzero((count < self.min_joints) | bad_value | one_point):  # bad rows only
            if count[b] < self.min_joints:
                reason = f"{int(count[b])} annotated joints, fewer than min_joints={self.min_joints}"
            elif bad_value[b]:
                joints = np.flatnonzero(visible[b] & ~finite[b]).tolist()
                reason = f"annotated joints {joints} hold NaN or inf"
            else:
                reason = "all annotated joints are at one point"
            problems.append((int(b), reason))
        return problems

    def _check_shapes(self, poses2d, visible) -> Tuple[np.ndarray, np.ndarray]:
        j = self.num_joints
        poses2d = np.asarray(poses2d, dtype=np.float64)
        visible = np.asarray(visible)
        if poses2d.ndim != 3 or poses2d.shape[1:] != (j, 2):
            raise ValueError(f"poses2d must be (B, {j}, 2), got {poses2d.shape}")
        if visible.shape != poses2d.shape[:2]:
            raise ValueError(f"visible must be (B, J) = {poses2d.shape[:2]}, got {visible.shape}")
        if visible.dtype != bool:
            if not np.all((visible == 0) | (visible == 1)):
                raise ValueError("visible must be boolean (or 0/1)")
            visible = visible.astype(bool)
        return poses2d, visible

    # ------------------------------------------------------------------ search
    def search(self, poses2d: np.ndarray, visible: np.ndarray) -> SearchResult:
        """Finds the nearest database entry of each query by exhaustive search (eq 9).

        Args:
          poses2d: (B, J, 2) pixels, x right, y down (like the database's camera axes, so no flip).
            Unannotated joints are ignored (they may be NaN).
          visible: (B, J) bool, True where a joint is annotated.
        Returns:
          A :class:`SearchResult` (see there for shapes and units).
        Raises:
          ValueError: on wrong shapes, or naming the first bad queries and why (see
            :meth:`validate_queries`, which reports them without raising).
        """
        problems = self.validate_queries(poses2d, visible)
        if problems:
            listed = "; ".join(f"query {b}: {why}" for b, why in problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ValueError(f"cannot search {len(problems)} queries: {listed}{more}")
        poses2d, visible = self._check_shapes(poses2d, visible)
        b_total = poses2d.shape[0]
        index = np.zeros(b_total, np.int64)
        for start in range(0, b_total, self.batch_size):
            sl = slice(start, start + self.batch_size)
            index[sl] = self._search_batch(poses2d[sl], visible[sl])
        return self._result(poses2d, visible, index)

    def _normalise_queries(self, poses2d: np.ndarray, visible: np.ndarray):
        """(B, J, 2) pixels + (B, J) mask -> centroid (B, 1, 2), spread (B,), qbar (B, J, 2) float64.

        ``qbar`` is zero at unannotated joints.
        """
        w = visible[..., None].astype(np.float64)
        p = np.where(visible[..., None], poses2d, 0.0)
        n = w.sum(axis=1, keepdims=True)
        centroid = p.sum(axis=1, keepdims=True) / n
        centred = (p - centroid) * w
        spread = np.sqrt(np.einsum("bjk,bjk->b", centred, centred))
        return centroid, spread, centred / spread[:, None, None]

    def _query_features(self, qbar: np.ndarray, visible: np.ndarray, dtype) -> Tuple[np.ndarray, np.ndarray]:
        """Query rows of the two products: Qd (B, 2J) and Qp (B, P') (see the module docstring)."""
        b = qbar.shape[0]
        n = visible.sum(axis=1)
        qd = (np.sqrt(n)[:, None, None] * qbar).transpose(0, 2, 1).reshape(b, -1)
        qp = np.zeros((b, self._pair_rows))
        num_pairs = self._pair_a.size
        qp[:, :num_pairs] = visible[:, self._pair_a] & visible[:, self._pair_b]
        qp[:, num_pairs] = self._epsilon
        return qd.astype(dtype), qp.astype(dtype)

    def _blocks(self):
        """Yields (first index, Cd (2J, L), Cp (P', L)) for each chunk, L <= chunk_size."""
        m, chunk = len(self), self.chunk_size
        for k in range(self._cd.shape[0]):
            valid = min(chunk, m - k * chunk)
            if valid == chunk:
                yield k * chunk, self._cd[k], self._cp[k]
            else:
                yield k * chunk, self._cd[k, :, :valid], self._cp[k, :, :valid]

    def _search_batch(self, poses2d: np.ndarray, visible: np.ndarray) -> np.ndarray:
        """(B, J, 2), (B, J) -> (B,) database indices: float32 scan, float64 re-rank, rare fallback."""
        _, _, qbar = self._normalise_queries(poses2d, visible)
        qd, qp = self._query_features(qbar, visible, np.float32)
        candidates = self._scan_float32(qd, qp, visible)
        best, sq_dist = self._rerank(qbar, visible, candidates)
        redo = ~(sq_dist <= _FALLBACK_SQUARED_DISTANCE)
        if redo.any():
            best[redo] = self._scan_exact(qbar[redo], visible[redo])
        return best

    def _mask_groups(self, visible: np.ndarray) -> Tuple[np.ndarray, List[np.ndarray]]:
        """Splits a batch by annotated mask: (rows searched one by one, [rows sharing a mask, ...]).

        A mask shared by at least ``group_min`` queries of the batch forms a group (``group_min`` 0
        disables groups).
        """
        rows = np.arange(visible.shape[0])
        if not self.group_min or visible.shape[0] < self.group_min:
            return rows, []
        _, inverse, counts = np.unique(visible, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        grouped = counts[inverse] >= self.group_min
        groups = [rows[inverse == g] for g in np.flatnonzero(counts >= self.group_min)]
        return rows[~grouped], groups

    def _scan_float32(self, qd: np.ndarray, qp: np.ndarray, visible: np.ndarray) -> np.ndarray:
        """Float32 products over all chunks -> (B, shortlist) candidate indices (-1 where unused).

        Scores are signed squared cosines ``dot |dot| / pair`` (monotone in the cosine, and cheaper
        than a square root). Queries sharing a mask are scored together: the pair sums depend only on
        the mask, so the chunk's coordinates are scaled once by ``1 / sqrt(pair)`` and the cosines are
        a single product. Each chunk's arg-max per query joins a running top-``shortlist``.
        """
        b, keep = qd.shape[0], self.shortlist
        rows = np.arange(b)
        top_score = np.full((b, keep), -np.inf, np.float32)
        top_index = np.full((b, keep), -1, np.int64)
        chunk_score = np.empty(b, np.float32)
        chunk_arg = np.empty(b, np.int64)
        single, groups = self._mask_groups(visible)
        qd_single, qp_single = qd[single], qp[single]
        group_qd = [qd[g] for g in groups]
        group_qp = [qp[g[:1]] for g in groups]
        # Reused product buffers (the last, shorter chunk gets fresh ones).
        dot_buf = np.empty((single.size, self.chunk_size), np.float32)
        pair_buf = np.empty((single.size, self.chunk_size), np.float32)
        for first, cd, cp in self._blocks():
            if single.size:
                full = cd.shape[1] == self.chunk_size
                dot = np.matmul(qd_single, cd, out=dot_buf if full else None)
                pair = np.matmul(qp_single, cp, out=pair_buf if full else None)
                np.divide(dot, pair, out=pair)
                np.multiply(pair, np.abs(dot, out=dot), out=pair)
                arg = pair.argmax(axis=1)
                chunk_arg[single] = arg
                chunk_score[single] = pair[np.arange(single.size), arg]
            for g, g_qd, g_qp in zip(groups, group_qd, group_qp):
                scale = g_qp @ cp                                                 # (1, L)
                np.sqrt(scale, out=scale)
                cosine = g_qd @ (cd / scale)
                arg = cosine.argmax(axis=1)
                value = cosine[np.arange(g.size), arg]
                chunk_arg[g] = arg
                chunk_score[g] = value * np.abs(value)
            worst = top_score.argmin(axis=1)
            better = chunk_score > top_score[rows, worst]                         # ties keep the earlier
            top_score[rows[better], worst[better]] = chunk_score[better]
            top_index[rows[better], worst[better]] = chunk_arg[better] + first
        return top_index

    def _rerank(self, qbar: np.ndarray, visible: np.ndarray, candidates: np.ndarray
                ) -> Tuple[np.ndarray, np.ndarray]:
        """Float64 D for (B, K) candidates (-1: none) -> (best index (B,), its D (B,)).

        D is ``inf`` for a missing or degenerate candidate; ties go to the lowest index.
        """
        sq = self._squared_distance(qbar[:, None], visible[:, None], np.maximum(candidates, 0))
        sq = np.where(candidates >= 0, sq, np.inf)
        order = np.lexsort((candidates, sq), axis=-1)[:, 0]
        rows = np.arange(candidates.shape[0])
        return candidates[rows, order], sq[rows, order]

    def _squared_distance(self, qbar: np.ndarray, visible: np.ndarray, index: np.ndarray) -> np.ndarray:
        """D of the module docstring, float64, for broadcastable qbar (..., J, 2), visible (..., J) and
        database indices (...,); ``inf`` where the candidate's annotated joints all coincide."""
        _, _, cbar, ok = self._normalise_candidates(visible, index)
        diff = (qbar - cbar) * visible[..., None]
        sq = np.einsum("...jk,...jk->...", diff, diff)
        return np.where(ok, sq, np.inf)

    def _normalise_candidates(self, visible: np.ndarray, index: np.ndarray):
        """Normalises stored 2D poses over query masks: returns (centroid (..., 1, 2), spread (...,),
        cbar (..., J, 2) over all joints, non-degenerate (...,) bool), float64."""
        coords = self._stored_coords(index)
        w = visible[..., None].astype(np.float64)
        n = w.sum(axis=-2, keepdims=True)
        centroid = (coords * w).sum(axis=-2, keepdims=True) / n
        centred = coords - centroid
        # Stored coordinates are float32 values, so the float64 centroid of coinciding joints is exact
        # and the spread of a degenerate candidate is exactly 0.
        spread = np.sqrt(np.einsum("...jk,...jk->...", centred * w, centred))
        ok = spread > 0
        cbar = centred / np.where(ok, spread, 1.0)[..., None, None]
        return centroid, spread, cbar, ok

    def _scan_exact(self, qbar: np.ndarray, visible: np.ndarray) -> np.ndarray:
        """Exhaustive float64 search for a few queries -> (B,) indices (lowest index on ties)."""
        qd, qp = self._query_features(qbar, visible, np.float64)
        qp[:, self._pair_a.size] = 0.0
        b = qd.shape[0]
        best_score = np.full(b, -np.inf)
        best_index = np.full(b, -1, np.int64)
        rows = np.arange(b)
        for first, cd, cp in self._blocks():
            dot = qd @ cd.astype(np.float64)
            pair = qp @ cp.astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                score = np.where(pair > 0, dot / np.sqrt(pair), -np.inf)
            arg = score.argmax(axis=1)
            value = score[rows, arg]
            better = value > best_score
            best_score[better] = value[better]
            best_index[better] = arg[better] + first
        if np.any(best_index < 0):
            raise ValueError("no database entry has two distinct joints among the annotated joints of "
                             f"{int(np.sum(best_index < 0))} queries")
        return best_index

    def _result(self, poses2d: np.ndarray, visible: np.ndarray, index: np.ndarray) -> SearchResult:
        centroid, spread, qbar = self._normalise_queries(poses2d, visible)
        _, _, cbar, _ = self._normalise_candidates(visible, index)
        diff = (qbar - cbar) * visible[..., None]
        sq = np.einsum("bjk,bjk->b", diff, diff)
        pose2d = centroid + spread[:, None, None] * cbar
        completed = np.where(visible[..., None], poses2d, pose2d)
        return SearchResult(index=index, pose_index=index // self.num_views, view=index % self.num_views,
                            distance=np.sqrt(sq), pose3d=self._orient(index), pose2d=pose2d,
                            completed2d=completed)
