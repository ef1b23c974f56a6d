"""Offline Pathfinder generator, written in the released folder format.

Each image shows two long contours (the *targets*), short distractor contours and
single-segment clutter, plus two round markers. Label 1: both markers sit on the two
ends of the same target contour. Label 0: one marker on each target. The task is to
tell the two apart, which needs tracing a contour across the image; difficulty grows
with the contour length (segments per target: 6, 9 or 14 for the released
``curv_baseline``, ``curv_contour_length_9`` and ``curv_contour_length_14``).

Construction (after Linsley et al.'s generator, github.com/drewlinsley/pathfinder,
which LRA used):

- Contours are polylines of ``contour_length`` segments of ``segment_length`` pixels
  whose heading turns by at most ``max_turn_deg`` per segment, rasterized as solid
  lines (``thickness`` pixels).
- The two targets start ``seed_distance`` pixels apart, so that the marker distance is
  about the same for both labels (the marker pair is always one target's start and a
  target's end).
- Distinct objects never touch: every contour, and a disk around each target end, is
  kept at least ``gap + 1`` pixels (Chebyshev) away from every other object. So the
  8-connected components of the image are exactly the objects, and the label equals
  "both markers lie in one connected component" (what the tests check with
  ``scipy.ndimage.label``).
- Contours are drawn at intensity ``contour_value`` (191 = 0.75 * 255, the released
  pathfinder32 contrast) and markers at 255.

Differences from the released data: contours are solid rather than dashed paddles and
have no anti-aliasing, so models trained here will not transfer to the release; the
task and its long-range structure are the same.

Everything is deterministic: image ``k`` of a call is drawn from
``numpy.random.default_rng([seed, k])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import PATHFINDER_DIFFICULTIES

__all__ = ["PathfinderSample", "pathfinder_style", "render_pathfinder", "write_pathfinder", "CONTOUR_LENGTHS"]

#: Segments per target contour of each released difficulty folder.
CONTOUR_LENGTHS = {"curv_baseline": 6, "curv_contour_length_9": 9, "curv_contour_length_14": 14}

# Per-resolution geometry; marker radius and seed distance are the released values.
_STYLES = {
    32: dict(segment_length=2.0, thickness=1, marker_radius=1.5, seed_distance=7, gap=1, distractor_budget=20),
    64: dict(segment_length=4.0, thickness=1, marker_radius=2.5, seed_distance=12, gap=1, distractor_budget=22),
    128: dict(segment_length=8.0, thickness=2, marker_radius=3.0, seed_distance=20, gap=2, distractor_budget=35),
}


def pathfinder_style(resolution: int) -> dict:
    """Default geometry for ``resolution`` (32, 64, 128, or any size >= 16, scaled from 32).

    Keys: ``segment_length`` (pixels per segment), ``thickness`` (line width, pixels),
    ``marker_radius``, ``seed_distance`` (pixels between the target starts), ``gap``
    (clear pixels between objects) and ``distractor_budget`` (total distractor
    segments; divided into contours of ``contour_length // 3`` segments).
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 16:
        raise ValueError(f"`resolution` must be an integer >= 16; got {resolution!r}.")
    if resolution in _STYLES:
        return dict(_STYLES[resolution])
    s = resolution / 32
    return dict(segment_length=2.0 * s, thickness=max(1, round(s / 2)), marker_radius=1.5 * s,
                seed_distance=round(7 * s), gap=max(1, round(s / 2)), distractor_budget=round(20 * s))


@dataclass
class PathfinderSample:
    """One rendered image.

    Attributes:
        image: ``(S, S)`` uint8; 0 background, ``contour_value`` contours, 255 markers.
        label: 1 if the markers are on the same contour, else 0.
        markers: the two marker centres ``((y, x), (y, x))`` in pixels.
        contours: the two target polylines, each ``(contour_length + 1, 2)`` float (y, x).
    """

    image: np.ndarray
    label: int
    markers: tuple[tuple[float, float], tuple[float, float]]
    contours: tuple[np.ndarray, np.ndarray]


class _Canvas:
    def __init__(self, size: int, pad: int, gap: int, thickness: int):
        self.size, self.pad = size, pad
        self.forbidden = np.zeros((size, size), dtype=bool)
        self.forbidden[:pad, :] = self.forbidden[-pad:, :] = True
        self.forbidden[:, :pad] = self.forbidden[:, -pad:] = True
        from scipy import ndimage  # imported here: keeps `import neuroconv.lra` light

        self._dilate = ndimage.binary_dilation
        self.struct = np.ones((2 * gap + 1, 2 * gap + 1), dtype=bool)
        r = (thickness - 1) / 2
        k = int(math.ceil(r))
        oy, ox = np.mgrid[-k:k + 1, -k:k + 1]
        keep = oy ** 2 + ox ** 2 <= r ** 2 + 1e-9
        self.brush = np.stack([oy[keep], ox[keep]], axis=1)  # (n_offsets 2)
        self.reach = k  # brush radius in whole pixels
        self._t: dict[int, np.ndarray] = {}

    def segment(self, p0: np.ndarray, p1: np.ndarray) -> np.ndarray | None:
        """Pixels (n, 2) of the segment p0 -> p1 (sampled every 1/4 pixel), or None if
        it leaves the image."""
        y0, x0, y1, x1 = float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1])
        lo, hi = -0.5 + self.reach, self.size - 0.5 - self.reach
        if min(y0, x0, y1, x1) < lo or max(y0, x0, y1, x1) >= hi:
            return None
        n = max(2, int(math.ceil(max(abs(y1 - y0), abs(x1 - x0)) * 4)) + 1)
        t = self._t.get(n)
        if t is None:
            t = self._t[n] = np.linspace(0.0, 1.0, n)[:, None]
        pts = np.rint(p0 + t * (p1 - p0)).astype(np.int64)  # (n 2)
        if len(self.brush) > 1:
            pts = (pts[:, None, :] + self.brush[None]).reshape(-1, 2)
        return pts

    def disk(self, c: np.ndarray, radius: float) -> np.ndarray | None:
        k = int(math.ceil(radius))
        cy, cx = int(round(c[0])), int(round(c[1]))
        oy, ox = np.mgrid[cy - k:cy + k + 1, cx - k:cx + k + 1]
        keep = (oy - c[0]) ** 2 + (ox - c[1]) ** 2 <= radius ** 2
        pts = np.stack([oy[keep], ox[keep]], axis=1)
        if len(pts) == 0:
            pts = np.array([[cy, cx]])
        if pts.min() < 0 or pts.max() >= self.size:
            return None
        return pts

    def free(self, pts: np.ndarray | None) -> bool:
        return pts is not None and not self.forbidden[pts[:, 0], pts[:, 1]].any()

    def reserve(self, pts: np.ndarray) -> None:
        """Forbid ``pts`` and every pixel within ``gap`` (Chebyshev) of them."""
        g = self.struct.shape[0] // 2
        y0, x0 = np.maximum(pts.min(0) - g, 0)
        y1, x1 = np.minimum(pts.max(0) + g + 1, self.size)
        m = np.zeros((y1 - y0, x1 - x0), dtype=bool)  # local window around pts
        m[pts[:, 0] - y0, pts[:, 1] - x0] = True
        self.forbidden[y0:y1, x0:x1] |= self._dilate(m, structure=self.struct)


_WIDEST_TURN = math.radians(120)


def _grow(rng, canvas: _Canvas, start, heading, n_seg, seg_len, max_turn, tries=12):
    """Polyline of n_seg segments from start avoiding canvas.forbidden, or None.

    Each segment turns by a uniform angle in +-max_turn; when that runs into an obstacle,
    later tries widen the range (up to +-120 degrees), so contours bend around walls and
    other objects instead of failing (as the original generator samples among free
    directions).
    """
    pts = [np.asarray(start, dtype=np.float64)]
    pix = []
    first = canvas.segment(pts[0], pts[0])
    if not canvas.free(first):
        return None
    pix.append(first)
    wide = max(max_turn, _WIDEST_TURN)
    for i in range(n_seg):
        for k in range(tries):
            if i == 0:
                h = heading if k == 0 else rng.uniform(-math.pi, math.pi)
            else:
                limit = min(wide, max_turn * (1.0 + 0.5 * k))
                h = heading + rng.uniform(-limit, limit)
            end = pts[-1] + seg_len * np.array([math.sin(h), math.cos(h)])
            seg = canvas.segment(pts[-1], end)
            if canvas.free(seg):
                heading = h
                pts.append(end)
                pix.append(seg)
                break
        else:
            return None
    return np.stack(pts), np.concatenate(pix)


def render_pathfinder(
    seed=0,
    *,
    resolution: int = 32,
    contour_length: int = 14,
    label: int | None = None,
    max_turn_deg: float = 30.0,
    n_distractors: int | None = None,
    distractor_length: int | None = None,
    n_clutter: int | None = None,
    contour_value: int = 191,
    style: dict | None = None,
    max_attempts: int = 200,
) -> PathfinderSample:
    """Render one Pathfinder image.

    Parameters:
        seed: an int / sequence of ints (seeds ``numpy.random.default_rng``) or a
            ``numpy.random.Generator``.
        resolution: image side ``S`` in pixels.
        contour_length: segments per target contour (difficulty).
        label: force the label (0 or 1); ``None`` draws it uniformly.
        max_turn_deg: largest heading change between consecutive segments.
        n_distractors, distractor_length: distractor contours and their segments;
            default ``distractor_budget // distractor_length`` contours of
            ``max(1, contour_length // 3)`` segments (the released recipe).
        n_clutter: single-segment distractors; default ``resolution // 4``. Distractors
            and clutter that find no free room are left out.
        contour_value: intensity of contours (markers are 255).
        style: overrides of :func:`pathfinder_style`.
        max_attempts: restarts allowed to place the two targets before ``RuntimeError``.

    Returns a :class:`PathfinderSample`.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    st = pathfinder_style(resolution) | dict(style or {})
    contour_length = int(contour_length)
    if contour_length < 1:
        raise ValueError(f"`contour_length` must be >= 1; got {contour_length!r}.")
    if label not in (None, 0, 1):
        raise ValueError(f"`label` must be 0, 1 or None; got {label!r}.")
    if not 0 < contour_value < 255:
        raise ValueError(f"`contour_value` must be in 1..254 (255 is reserved for markers); got {contour_value!r}.")
    d_len = max(1, contour_length // 3) if distractor_length is None else int(distractor_length)
    n_dist = st["distractor_budget"] // d_len if n_distractors is None else int(n_distractors)
    n_clut = resolution // 4 if n_clutter is None else int(n_clutter)
    seg_len, r, gap = float(st["segment_length"]), float(st["marker_radius"]), int(st["gap"])
    max_turn = math.radians(max_turn_deg)
    min_marker_dist = 2 * r + gap + 2
    if label is None:
        label = int(rng.integers(2))

    # Target starts are drawn from the centre, 2 * seed_distance away from the borders
    # (the released recipe), leaving room for long contours.
    seed_lo = max(2 * st["seed_distance"], math.ceil(r) + r)
    seed_hi = min(resolution - 2 * st["seed_distance"], resolution - 1 - math.ceil(r) - r)
    if seed_hi <= seed_lo:
        seed_lo = seed_hi = (resolution - 1) / 2
    for _ in range(max_attempts):
        cv = _Canvas(resolution, pad=max(1, int(math.ceil(r))), gap=gap, thickness=int(st["thickness"]))
        start_a = rng.uniform(seed_lo, seed_hi, size=2)
        a = _grow(rng, cv, start_a, rng.uniform(-math.pi, math.pi), contour_length, seg_len, max_turn)
        if a is None:
            continue
        ends_a = (a[0][0], a[0][-1])
        disks_a = [cv.disk(e, r) for e in ends_a]
        if any(d is None for d in disks_a):
            continue
        cv.reserve(np.concatenate([a[1], *disks_a]))
        ang = rng.uniform(-math.pi, math.pi)
        start_b = start_a + st["seed_distance"] * np.array([math.sin(ang), math.cos(ang)])
        b = _grow(rng, cv, start_b, rng.uniform(-math.pi, math.pi), contour_length, seg_len, max_turn)
        if b is None:
            continue
        ends_b = (b[0][0], b[0][-1])
        disks_b = [cv.disk(e, r) for e in ends_b]
        if not all(cv.free(d) for d in disks_b):
            continue
        ends = (*ends_a, *ends_b)
        if min(np.hypot(*(p - q)) for i, p in enumerate(ends) for q in ends[i + 1:]) < min_marker_dist:
            continue
        break
    else:
        raise RuntimeError(
            f"render_pathfinder: could not place two {contour_length}-segment contours in a "
            f"{resolution}x{resolution} image after {max_attempts} attempts; shorten the contours."
        )
    cv.reserve(np.concatenate([b[1], *disks_b]))

    image = np.zeros((resolution, resolution), dtype=np.uint8)
    image[a[1][:, 0], a[1][:, 1]] = contour_value
    image[b[1][:, 0], b[1][:, 1]] = contour_value
    free_lo, free_hi = cv.pad, resolution - 1 - cv.pad
    for n_seg, count in ((d_len, n_dist), (1, n_clut)):
        for _ in range(count):
            for _try in range(5):
                c = _grow(rng, cv, rng.uniform(free_lo, free_hi, size=2), rng.uniform(-math.pi, math.pi),
                          n_seg, seg_len, max_turn, tries=4)
                if c is not None:
                    cv.reserve(c[1])
                    image[c[1][:, 0], c[1][:, 1]] = contour_value
                    break

    first = int(rng.integers(2))  # which target carries the start marker
    targets = (a[0], b[0])
    m0 = targets[first][0]
    m1 = targets[first][-1] if label == 1 else targets[1 - first][-1]
    for m in (m0, m1):
        d = cv.disk(m, r)
        image[d[:, 0], d[:, 1]] = 255
    return PathfinderSample(image=image, label=label, markers=(tuple(m0), tuple(m1)), contours=(a[0], b[0]))


def write_pathfinder(
    out_dir,
    n_images: int,
    *,
    resolution: int = 32,
    difficulty: str = "hard",
    seed: int = 0,
    images_per_folder: int = 1000,
    **render_kwargs,
) -> Path:
    """Generate Pathfinder images in the released folder format.

    Writes ``out_dir/pathfinder{resolution}/{folder}/imgs/<n>/sample_<i>.png``
    (8-bit grayscale) and ``.../metadata/<n>.npy``, where ``folder`` is the difficulty's
    released name (``easy`` -> ``curv_baseline``, ``intermediate`` ->
    ``curv_contour_length_9``, ``hard`` -> ``curv_contour_length_14``), ``<n>`` counts
    folders of ``images_per_folder`` images and ``<i>`` restarts at 0 in each. Metadata
    files are text, as released: one line per image,
    ``imgs/<n> sample_<i>.png <i> <label> <max_turn_deg> <contour_length>
    <distractor_length> <segment_length> <thickness> <gap> 1``. Labels are balanced in
    expectation. :class:`neuroconv.lra.PathfinderDataset` reads the result.

    Image ``k`` (over the whole call) uses ``default_rng([seed, k])``; ``render_kwargs``
    go to :func:`render_pathfinder`. Returns the difficulty folder.
    """
    from PIL import Image

    if isinstance(n_images, bool) or not isinstance(n_images, int) or n_images < 1:
        raise ValueError(f"`n_images` must be an integer >= 1; got {n_images!r}.")
    if isinstance(images_per_folder, bool) or not isinstance(images_per_folder, int) or images_per_folder < 1:
        raise ValueError(f"`images_per_folder` must be an integer >= 1; got {images_per_folder!r}.")
    folder = PATHFINDER_DIFFICULTIES.get(difficulty, difficulty)
    if folder not in CONTOUR_LENGTHS:
        raise ValueError(f"`difficulty` must be one of {list(PATHFINDER_DIFFICULTIES)}; got {difficulty!r}.")
    contour_length = render_kwargs.pop("contour_length", CONTOUR_LENGTHS[folder])
    st = pathfinder_style(resolution) | dict(render_kwargs.get("style") or {})
    d_len = render_kwargs.get("distractor_length") or max(1, contour_length // 3)
    turn = render_kwargs.get("max_turn_deg", 30.0)
    root = Path(out_dir) / f"pathfinder{resolution}" / folder
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    lines: dict[int, list[str]] = {}
    for k in range(n_images):
        n, i = divmod(k, images_per_folder)
        sample = render_pathfinder(np.random.default_rng([seed, k]), resolution=resolution,
                                   contour_length=contour_length, **render_kwargs)
        sub = f"imgs/{n}"
        (root / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.image).save(root / sub / f"sample_{i}.png")
        lines.setdefault(n, []).append(
            f"{sub} sample_{i}.png {i} {sample.label} {turn:g} {contour_length} {d_len} "
            f"{st['segment_length']:g} {st['thickness']} {st['gap']} 1"
        )
    for n, rows in lines.items():
        (root / "metadata" / f"{n}.npy").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root
