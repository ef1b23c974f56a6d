"""``neuroconv bench preprocess``: the fast extractors against nilearn's maskers.

Synthesizes (no download) an MNI-like brain grid (default 3 mm, 61 x 73 x 61) with a
DiFuMo-like probabilistic atlas (smooth, overlapping, sparse maps) and a Schaefer-like
labels atlas, then times side by side in one run, on the same in-memory 4D image:

- ``MapsExtractor`` vs ``NiftiMapsMasker`` (fit once, then ``transform`` per run),
- ``LabelsExtractor`` vs ``NiftiLabelsMasker``,

checks that the outputs agree (max relative error) and prints a table; ``--json`` also
writes the numbers.
"""

from __future__ import annotations

import argparse
import sys


def _grid(mm: float):
    import numpy as np

    shape = tuple(int(round(s * 2 / mm)) + 1 for s in (90, 108, 90))   # MNI bounding box
    affine = np.diag([mm, mm, mm, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    g = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"), -1)
    brain = np.square(g / np.array([0.8, 0.85, 0.75])).sum(-1) <= 1.0
    return shape, affine, brain


def make_atlases(mm: float, n_maps: int, n_labels: int, seed: int = 0):
    """DiFuMo-like maps (x, y, z, n_maps) and Schaefer-like labels on one grid."""
    import numpy as np
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    shape, affine, brain = _grid(mm)
    vox = np.argwhere(brain)
    lab = np.zeros(shape, np.int32)
    seeds = vox[rng.choice(len(vox), n_labels, replace=False)]
    lab[tuple(vox.T)] = cKDTree(seeds).query(vox)[1] + 1
    # maps: each a Gaussian blob (sigma ~ 8-14 mm) truncated at 2 % -> sparse, overlapping
    centers = vox[rng.choice(len(vox), n_maps, replace=False)]
    sigma = rng.uniform(8, 14, n_maps) / mm
    maps = np.zeros(shape + (n_maps,), np.float32)
    tree = cKDTree(vox)
    for k, (c, s) in enumerate(zip(centers, sigma)):
        idx = tree.query_ball_point(c, r=3 * s)
        v = vox[idx]
        w = np.exp(-np.square(v - c).sum(1) / (2 * s * s))
        w[w < 0.02] = 0
        maps[tuple(v.T) + (k,)] = w
    return shape, affine, brain, maps, lab


def make_bold(shape, affine, brain, n_times: int, seed: int = 1):
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(seed)
    data = np.zeros(shape + (n_times,), np.float32)
    data[brain] = 1000 + rng.standard_normal((int(brain.sum()), n_times)).astype(np.float32) * 10
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(img.header.get_zooms()[:3] + (2.0,))
    return img


def _timed(fn, repeats: int = 1):
    """``(best seconds over repeats, last result)`` of ``fn()``."""
    import time

    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_bench(mm=3.0, n_maps=(256, 512), n_labels=400, n_times=150, repeats=3,
              seed=0, verbose=True) -> dict:
    import warnings

    import nibabel as nib
    import numpy as np
    from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker

    from .atlas import LabelsExtractor, MapsExtractor

    results = {"grid_mm": mm, "n_times": n_times, "repeats": repeats, "maps": [],
               "labels": None}
    for nm in n_maps:
        shape, affine, brain, maps, lab = make_atlases(mm, nm, n_labels, seed)
        img = make_bold(shape, affine, brain, n_times)
        maps_img = nib.Nifti1Image(maps, affine)
        nnz = float((maps != 0).sum()) / maps[..., 0].size / nm
        fit_fast, fast = _timed(lambda: MapsExtractor(maps_img).fit(img))
        t_fast, a = _timed(lambda: fast.transform(img), repeats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_nl, masker = _timed(lambda: NiftiMapsMasker(maps_img).fit(img))
            t_nl, b = _timed(lambda: masker.transform(img), repeats if nm <= 256 else 1)
        err = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
        row = {"n_maps": nm, "voxels": int(np.prod(shape)), "brain_voxels": int(brain.sum()),
               "map_density": round(nnz, 4), "fast_fit_s": fit_fast,
               "fast_transform_s": t_fast, "nilearn_fit_s": fit_nl,
               "nilearn_transform_s": t_nl, "speedup": t_nl / t_fast,
               "max_rel_err": err}
        results["maps"].append(row)
        if verbose:
            print(f"maps {nm}: fast {t_fast:.3f}s  nilearn {t_nl:.3f}s  "
                  f"x{row['speedup']:.1f}  err {err:.1e}", file=sys.stderr)
    shape, affine, brain, _, lab = make_atlases(mm, 1, n_labels, seed)
    img = make_bold(shape, affine, brain, n_times)
    lab_img = nib.Nifti1Image(lab, affine)
    fast = LabelsExtractor(lab_img).fit(img)
    t_fast, a = _timed(lambda: fast.transform(img), repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        masker = NiftiLabelsMasker(lab_img).fit(img)
        t_nl, b = _timed(lambda: masker.transform(img), repeats)
    err = float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
    results["labels"] = {"n_labels": n_labels, "fast_transform_s": t_fast,
                         "nilearn_transform_s": t_nl, "speedup": t_nl / t_fast, "max_rel_err": err}
    return results


def _table(res: dict) -> str:
    lines = [f"grid {res['grid_mm']} mm, {res['n_times']} volumes, best of {res['repeats']}",
             f"{'extractor':<34}{'ours (s)':>10}{'nilearn (s)':>13}{'speedup':>9}"
             f"{'max rel err':>13}"]
    for r in res["maps"]:
        lines.append(f"{'maps, ' + str(r['n_maps']) + ' maps vs NiftiMapsMasker':<34}"
                     f"{r['fast_transform_s']:>10.3f}{r['nilearn_transform_s']:>13.3f}"
                     f"{r['speedup']:>8.1f}x{r['max_rel_err']:>13.1e}")
    r = res["labels"]
    lines.append(f"{'labels, ' + str(r['n_labels']) + ' vs NiftiLabelsMasker':<34}"
                 f"{r['fast_transform_s']:>10.3f}{r['nilearn_transform_s']:>13.3f}"
                 f"{r['speedup']:>8.1f}x{r['max_rel_err']:>13.1e}")
    return "\n".join(lines)


def _cmd(a) -> int:
    import json

    res = run_bench(mm=a.grid_mm, n_maps=a.n_maps, n_labels=a.n_labels, n_times=a.n_times,
                    repeats=a.repeats, seed=a.seed)
    print(_table(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


def add_bench_preprocess(sub) -> None:
    p = sub.add_parser("preprocess", help="time the preprocessing extractors",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid-mm", type=float, default=3.0, help="voxel size in mm (default 3)")
    p.add_argument("--n-maps", type=int, nargs="+", default=[256, 512],
                   help="probabilistic atlas sizes (default 256 512)")
    p.add_argument("--n-labels", type=int, default=400, help="labels atlas size (default 400)")
    p.add_argument("--n-times", type=int, default=150, help="volumes (default 150)")
    p.add_argument("--repeats", type=int, default=3, help="timing repeats (best of)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="FILE", help="also write results as JSON")
    p.set_defaults(func=_cmd)
