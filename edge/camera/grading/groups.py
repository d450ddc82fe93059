"""Photo groups (sessions, backdrops, cameras) and cross-validation folds that keep them apart.

A model scored on folds that mix photos of one session learns the session: the paper
the potatoes lay on, the camera's image size, the web thumbnails one class came as. On a
cooperative's own photos the score then looks fine and collapses on another grower's.
So calibration scores each candidate on folds that hold whole groups out:

- :func:`photo_groups` gives each photo a group. When the calibration folder holds a
  ``groups.csv`` (``file,group``; ``edge grade dataset export`` writes one: the station
  site and the local day of the photo) it is used as it is. Otherwise the groups are
  derived from what a session leaves on every photo (:func:`session_cues`): the
  backdrop's colour (the border strip's median CIE Lab), the image size and aspect, and
  the JPEG quantisation (the camera or app that saved it); photos whose cues lie within
  GROUP_DISTANCE of each other (average linkage, a deterministic agglomerative
  clustering) are one group.
- :func:`group_folds` deals groups to folds (a stratified group k-fold: each group, the
  largest first, goes to the fold whose class mix it disturbs least), keeping every
  group whole and every class in every training fold.

A class whose photos all (or mostly) fall in one group could not be held out without
leaving its training fold empty of it, or nearly. Such a class's photos in that group
are split into sub-clusters of their own cues (:func:`cluster_groups`, a finer
threshold: the light, the framing within the session), and when the cues cannot split
them (one group read from ``groups.csv``, or identical cues) :func:`group_folds` splits
that group's photos in two halves by order: the class stays in training, and its fold
scores are the more optimistic for it. Both are pure functions of their inputs.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

GROUPS_FILE = "groups.csv"
BORDER_SHARE = 0.04  # the strip that shows the backdrop: 4 % of the long side
CUE_SIDE = 128  # the long side the border colour is read at
# A cue vector's units: the backdrop's L*, a*, b* weigh LAB_WEIGHTS each (the exposure
# varies within a session, the paper's or table's tint does not: a b* step of 3 is
# another paper). The size and the
# aspect count as this many units per natural-log step (x2.7 in size, or in aspect).
LAB_WEIGHTS = np.array([0.25, 2.5, 2.5])
SIZE_WEIGHT = 8.0
ASPECT_WEIGHT = 30.0
JPEG_WEIGHT = 6.0  # per log step of the mean luminance quantiser (the save quality)
SAME_SIZE_WEIGHT = 4.0  # different exact pixel dimensions: a different camera or crop
GROUP_DISTANCE = 12.0  # cue distance (average linkage) below which photos share a group
SPLIT_DISTANCE = 4.0  # the finer threshold a one-session class is split with
MAX_CLASS_SHARE = 0.6  # one group holding more of a class than this is split


def session_cues(data: bytes) -> Floats:
    """The session cues of one photo file: backdrop L*, a*, b* (the border strip's
    median), log long side, log aspect, log mean JPEG luminance quantiser (0 for a file
    that is not a JPEG), width, height. ``ValueError`` when it is not an image."""
    arr = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(arr, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("not a readable image")
    h, w = bgr.shape[:2]
    scale = CUE_SIDE / max(h, w)
    if scale < 1:
        size = (max(round(w * scale), 1), max(round(h * scale), 1))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
    sh, sw = lab.shape[:2]
    b = max(round(BORDER_SHARE * max(sh, sw)), 1)
    strip = np.concatenate(
        [
            lab[:b].reshape(-1, 3),
            lab[-b:].reshape(-1, 3),
            lab[:, :b].reshape(-1, 3),
            lab[:, -b:].reshape(-1, 3),
        ]
    )
    colour = np.median(strip, axis=0)
    return np.array(
        [
            *colour,
            math.log(max(h, w)),
            math.log(w / h),
            math.log(_jpeg_quantiser(data)),
            float(w),
            float(h),
        ],
        np.float64,
    )


def _jpeg_quantiser(data: bytes) -> float:
    """The mean of the first quantisation table in a JPEG's DQT segment (1 = quality 100,
    larger = coarser); 1.0 when there is none."""
    i = 2 if data[:2] == b"\xff\xd8" else len(data)
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker == 0xDB and length >= 67:
            precision = data[i + 4] >> 4
            table = data[i + 5 : i + 5 + (128 if precision else 64)]
            values = np.frombuffer(table, ">u2") if precision else np.frombuffer(table, np.uint8)
            return max(float(values.mean()), 1.0)
        if marker in (0xDA, 0xD9):  # scan data or end: no table before it
            break
        i += 2 + length
    return 1.0


def cue_distances(cues: Floats) -> Floats:
    """Pairwise distances of cue vectors (rows from :func:`session_cues`), in cue units."""
    lab = cues[:, :3] * LAB_WEIGHTS
    d_lab = np.sqrt(((lab[:, None, :] - lab[None, :, :]) ** 2).sum(axis=2))
    d_size = SIZE_WEIGHT * np.abs(cues[:, None, 3] - cues[None, :, 3])
    d_aspect = ASPECT_WEIGHT * np.abs(cues[:, None, 4] - cues[None, :, 4])
    d_jpeg = JPEG_WEIGHT * np.abs(cues[:, None, 5] - cues[None, :, 5])
    dims = cues[:, 6:8]
    d_dims = SAME_SIZE_WEIGHT * (np.abs(dims[:, None, :] - dims[None, :, :]).max(axis=2) > 0)
    out: Floats = d_lab + d_size + d_aspect + d_jpeg + d_dims
    return out


def agglomerate(dist: Floats, threshold: float) -> list[int]:
    """Average-linkage clustering: merge the two closest clusters while their mean
    distance is under ``threshold``. Deterministic (ties go to the lowest indices);
    clusters are numbered by their first photo."""
    n = len(dist)
    if n == 0:
        return []
    d = dist.astype(np.float64).copy()
    np.fill_diagonal(d, np.inf)
    size = np.ones(n)
    alive = np.ones(n, np.bool_)
    parent = np.arange(n)
    while alive.sum() > 1:
        flat = int(np.argmin(d))
        i, j = divmod(flat, n)
        if not d[i, j] < threshold:
            break
        i, j = min(i, j), max(i, j)
        # Lance-Williams update for average linkage: j merges into i.
        merged = (size[i] * d[i] + size[j] * d[j]) / (size[i] + size[j])
        d[i], d[:, i] = merged, merged
        d[i, i] = np.inf
        d[j], d[:, j] = np.inf, np.inf
        size[i] += size[j]
        alive[j] = False
        parent[parent == j] = i
    firsts: dict[int, int] = {}
    return [firsts.setdefault(int(p), len(firsts)) for p in parent]


def cluster_groups(
    cues: Floats, labels: Sequence[int], threshold: float = GROUP_DISTANCE
) -> list[int]:
    """Groups from session cues. When one group holds more than MAX_CLASS_SHARE of a
    class's photos (a class photographed in one session: holding it out would leave its
    training fold next to none of it), that class's photos in the group are split into
    sub-clusters of their own cues (SPLIT_DISTANCE, halved until the largest is small
    enough); the largest keeps the group, the others become groups of their own."""
    groups = agglomerate(cue_distances(cues), threshold) if len(cues) else []
    y = np.asarray(labels, np.intp)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            continue
        g_of = np.asarray([groups[i] for i in idx])
        big = int(np.argmax(np.bincount(g_of)))
        members = idx[g_of == big]
        if len(members) <= MAX_CLASS_SHARE * len(idx):
            continue
        sub_dist = cue_distances(cues[members])
        t = SPLIT_DISTANCE
        sub = np.asarray(agglomerate(sub_dist, t))
        while np.bincount(sub).max() > MAX_CLASS_SHARE * len(idx) and t > 0.05:
            t /= 2
            sub = np.asarray(agglomerate(sub_dist, t))
        if sub.max() == 0:
            continue  # identical cues: group_folds splits the group by order
        keep = int(np.argmax(np.bincount(sub)))
        fresh: dict[int, int] = {}
        top = max(groups) + 1
        for i, s in zip(members, sub, strict=True):
            if s != keep:
                groups[i] = fresh.setdefault(int(s), top + len(fresh))
    return groups


def read_groups_file(root: Path, photos: Sequence[Path]) -> list[int] | None:
    """Groups from ``root/groups.csv`` (``file,group``; ``file`` relative to ``root``, or
    a bare file name when that is unambiguous), numbered in order of first appearance.
    ``None`` when there is no such file; ``ValueError`` naming the file and the first
    photo it does not list, or a malformed row."""
    path = root / GROUPS_FILE
    if not path.is_file():
        return None
    by_file: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"file", "group"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs the columns file,group")
        for n, row in enumerate(reader, start=2):
            name, group = (row.get("file") or "").strip(), (row.get("group") or "").strip()
            if not name or not group:
                raise ValueError(f"{path}: line {n}: file and group must both be given")
            by_file[name.replace("\\", "/")] = group
    names: dict[str, int] = {}
    out = []
    for p in photos:
        try:
            rel = p.relative_to(root).as_posix()
        except ValueError:
            rel = p.name
        group = by_file.get(rel, by_file.get(p.name))
        if group is None:
            raise ValueError(f"{path}: does not list {rel}; give every photo a group")
        out.append(names.setdefault(group, len(names)))
    return out


def photo_groups(photos: Sequence[Path], labels: Sequence[int]) -> list[int]:
    """A group number per photo (see the module's docstring). The calibration folder is
    the photos' common grandparent (DIR/<grade>/<photo>); its ``groups.csv`` wins.
    An unreadable photo gets a group of its own."""
    if not photos:
        return []
    parents = {p.parent.parent for p in photos}
    if len(parents) == 1:
        from_file = read_groups_file(parents.pop(), photos)
        if from_file is not None:
            return from_file
    rows: list[Floats] = []
    unreadable: list[int] = []
    for i, p in enumerate(photos):
        try:
            rows.append(session_cues(p.read_bytes()))
        except (OSError, ValueError):
            rows.append(np.full(8, np.nan))
            unreadable.append(i)
    cues = np.vstack(rows)
    ok = np.flatnonzero(~np.isnan(cues).any(axis=1))
    y = np.asarray(labels, np.intp)
    inner = cluster_groups(cues[ok], y[ok].tolist()) if len(ok) else []
    out = [0] * len(photos)
    for i, g in zip(ok.tolist(), inner, strict=True):
        out[i] = g
    top = max(inner, default=-1) + 1
    for n, i in enumerate(unreadable):
        out[i] = top + n
    return out


def group_folds(groups: Sequence[int], labels: Sequence[int], k: int) -> list[int]:
    """A fold number (0 .. k'-1, k' ≤ k) per photo; each group lies in one fold.

    Stratified group k-fold: groups are dealt largest first (ties: the lowest group
    number), each to the fold where the class counts stay closest to an even share
    (the sum of squared excesses over a fold's target), which also spreads each class's
    groups over folds. k' is at most the number of groups. Afterwards every class must
    lie in at least two folds (else some training fold would lack it): a class whose
    groups all fell in one fold has its smallest group moved to the fold holding least
    of that class; a class that has a single group splits that group into two halves
    by photo order (its photos are then not held out as a whole; see the module)."""
    g = np.asarray(groups, np.intp)
    y = np.asarray(labels, np.intp)
    n = len(g)
    if n == 0:
        return []
    if k < 2:
        raise ValueError("group_folds needs k >= 2")
    g = _split_single_group_classes(g, y)
    ids = np.unique(g)
    k = min(k, len(ids))
    nc = int(y.max()) + 1
    counts = np.zeros((len(ids), nc))
    np.add.at(counts, (np.searchsorted(ids, g), y), 1)
    target = counts.sum(axis=0) / k
    order = sorted(range(len(ids)), key=lambda i: (-counts[i].sum(), int(ids[i])))
    fold_counts = np.zeros((k, nc))
    fold_of = np.zeros(len(ids), np.intp)
    for i in order:
        costs = []
        for f in range(k):
            after = fold_counts[f] + counts[i]
            excess = np.maximum(after - target, 0.0) / np.maximum(target, 1.0)
            costs.append(float((excess**2).sum()) + 1e-6 * float(fold_counts[f].sum()))
        f = int(np.argmin(costs))
        fold_of[i] = f
        fold_counts[f] += counts[i]
    for c in range(nc):
        has = np.flatnonzero(counts[:, c] > 0)
        if len(has) < 2 or len(set(fold_of[has].tolist())) > 1:
            continue
        smallest = min(has, key=lambda i: (counts[i, c], int(ids[i])))
        here = fold_of[smallest]
        to = min((f for f in range(k) if f != here), key=lambda f: (fold_counts[f, c], f))
        fold_counts[here] -= counts[smallest]
        fold_counts[to] += counts[smallest]
        fold_of[smallest] = to
    # Folds left empty by the moves are dropped and the rest renumbered in order.
    used = sorted(set(fold_of.tolist()))
    renumber = {f: i for i, f in enumerate(used)}
    return [renumber[int(fold_of[int(np.searchsorted(ids, gi))])] for gi in g]


def _split_single_group_classes(
    g: npt.NDArray[np.intp], y: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """Split the group of each class that lies in one group only in two: the second half
    (by photo order) of each class's photos in it gets a fresh group number."""
    g = g.copy()
    top = int(g.max()) + 1
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            continue
        own = np.unique(g[idx])
        if len(own) > 1:
            continue
        members = np.flatnonzero(g == own[0])
        for c2 in np.unique(y[members]):
            mine = members[y[members] == c2]
            g[mine[len(mine) // 2 :]] = top
        top += 1
    return g
