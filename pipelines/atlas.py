"""Atlases and fast region-signal extractors.

- :func:`resolve_atlas` turns a file (labels or probabilistic maps image) or a name that
  nilearn can fetch (DiFuMo 64-1024, Schaefer 100-1000, Harvard-Oxford, MSDL) into an
  :class:`AtlasSpec`. Names are fetched only when asked (never at import) from
  ``data_dir``: offline when the files are there, downloading when online.
- :class:`MapsExtractor` reproduces ``NiftiMapsMasker`` (least squares of each volume on
  the maps) with a sparse region x voxel matrix and a precomputed ``pinv(A^T A)``, made
  once per atlas and image grid and reused across runs (nilearn issue 3177).
- :class:`LabelsExtractor` reproduces ``NiftiLabelsMasker`` (mean per label) with one
  sparse averaging matrix.

Both follow the nilearn/scikit-learn estimator rules: ``__init__`` stores, ``fit(ref_img)``
validates and computes, fitted attributes end in ``_``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: atlas names resolve_atlas understands (see ``atlas_help``)
ATLAS_NAMES = {
    "difumo": "difumo[64|128|256|512|1024][:2mm|:3mm]   (probabilistic maps)",
    "schaefer": "schaefer[100..1000][:7|:17][:1mm|:2mm]  (labels)",
    "harvard-oxford": "harvard-oxford[:cort-maxprob-thr25-2mm|<any nilearn atlas_name>] (labels; *-prob-* are maps)",
    "msdl": "msdl  (probabilistic maps)",
}


def atlas_help() -> str:
    return "; ".join(ATLAS_NAMES.values())


@dataclass
class AtlasSpec:
    """A resolved atlas: an image file and its region names."""

    name: str
    path: str
    kind: str                                   # "labels" | "maps"
    names: list[str] | None = None              # maps: one per map; labels: see label_names
    label_names: dict[int, str] = field(default_factory=dict)  # labels: value -> name

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "kind": self.kind}


class AtlasError(ValueError):
    pass


def _read_names_file(path: Path) -> list[str] | dict[int, str]:
    """Names from a .txt (one per line), or .tsv/.csv (columns index/name)."""
    import pandas as pd

    if path.suffix.lower() == ".txt":
        return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    df = pd.read_csv(path, sep=sep)
    cols = {c.lower(): c for c in df.columns}
    name_col = next((cols[c] for c in ("name", "label", "labels", "region", "roi")
                     if c in cols), df.columns[-1])
    idx_col = next((cols[c] for c in ("index", "label_value", "value", "id") if c in cols),
                   None)
    if idx_col is not None:
        return {int(i): str(n) for i, n in zip(df[idx_col], df[name_col])}
    return [str(n) for n in df[name_col]]


def _spec_from_file(path: Path, labels=None, name: str | None = None) -> AtlasSpec:
    import nibabel as nib

    if not path.is_file():
        raise AtlasError(f"atlas={str(path)!r}: no such file. Pass a labels or maps NIfTI "
                         f"image, or a name: {atlas_help()}.")
    try:
        img = nib.load(str(path))
    except Exception as e:  # noqa: BLE001
        raise AtlasError(f"atlas={str(path)!r}: cannot be read as a NIfTI image ({e}).") from e
    shape = img.shape
    names_obj = None
    if labels is not None:
        if isinstance(labels, (str, Path)):
            names_obj = _read_names_file(Path(labels))
        else:
            names_obj = list(labels)
    if len(shape) == 4 and shape[3] > 1:
        n = shape[3]
        names = (list(names_obj.values()) if isinstance(names_obj, dict)
                 else names_obj) or [f"map{k:04d}" for k in range(n)]
        if len(names) == n + 1 and str(names[0]).lower() in ("background", "0"):
            names = names[1:]
        if len(names) != n:
            raise AtlasError(f"atlas={str(path)!r}: {n} maps but {len(names)} names; pass "
                             "one name per map (or none).")
        return AtlasSpec(name or path.name, str(path), "maps", names=[str(x) for x in names])
    if len(shape) == 4:
        shape = shape[:3]
    if len(shape) != 3:
        raise AtlasError(f"atlas={str(path)!r}: expected a 3D labels image or a 4D maps "
                         f"image, got shape {img.shape}.")
    data = np.asanyarray(img.dataobj).reshape(shape)
    if not np.allclose(data, np.round(data)):
        raise AtlasError(f"atlas={str(path)!r}: a 3D atlas must hold integer labels, this one "
                         "has fractional values. Pass probabilistic maps as a 4D image.")
    values = np.unique(np.round(data).astype(np.int64))
    values = values[values != 0]
    if isinstance(names_obj, dict):
        label_names = {int(v): names_obj.get(int(v), f"label{int(v)}") for v in values}
    elif names_obj is not None:
        # list: either indexed by label value (with background first) or one per label
        if len(names_obj) == len(values):
            label_names = {int(v): str(nm) for v, nm in zip(values, names_obj)}
        elif len(names_obj) > values.max():
            label_names = {int(v): str(names_obj[int(v)]) for v in values}
        else:
            raise AtlasError(f"atlas={str(path)!r}: {len(values)} labels but "
                             f"{len(names_obj)} names.")
    else:
        label_names = {int(v): f"label{int(v)}" for v in values}
    return AtlasSpec(name or path.name, str(path), "labels", label_names=label_names)


def _save_fetched(atlas_obj, name: str, data_dir: Path | None) -> AtlasSpec:
    """Turn a nilearn Atlas bunch into a spec backed by a file."""
    import nibabel as nib

    maps = atlas_obj.maps
    labels = list(atlas_obj.labels) if getattr(atlas_obj, "labels", None) is not None else None
    if not isinstance(maps, (str, Path)):
        cache = Path(data_dir or Path.home() / "nilearn_data") / "neuroconv_atlases"
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.nii.gz"
        if not path.is_file():
            nib.save(maps, str(path))
        maps = path
    img = nib.load(str(maps))
    if len(img.shape) == 4 and img.shape[3] > 1:
        return _spec_from_file(Path(maps), labels=labels, name=name)
    return _spec_from_file(Path(maps), labels=labels, name=name)


def resolve_atlas(atlas, data_dir=None, labels=None) -> AtlasSpec:
    """A file path or an atlas name -> :class:`AtlasSpec`.

    Parameters
    ----------
    atlas : path to a 3D labels image or 4D maps image, or a name
        (``difumo1024``, ``difumo:256:3mm``, ``schaefer400``, ``schaefer:200:17:2mm``,
        ``harvard-oxford``, ``harvard-oxford:sub-maxprob-thr25-2mm``, ``msdl``).
    data_dir : where nilearn keeps (or downloads) fetched atlases.
    labels : optional names file (.txt, one per line; .tsv/.csv with index/name) or list.
    """
    if isinstance(atlas, AtlasSpec):
        return atlas
    if atlas is None:
        raise AtlasError(f"atlas is required for NIfTI inputs; pass a file or a name: "
                         f"{atlas_help()}.")
    s = str(atlas)
    p = Path(s).expanduser()
    if p.suffix in (".nii", ".gz", ".img", ".mgz") or p.exists() or "/" in s:
        return _spec_from_file(p, labels=labels)
    return _fetch_named(s, data_dir)


def _fetch_named(s: str, data_dir) -> AtlasSpec:
    from nilearn import datasets

    key = s.lower().replace("_", "-")
    parts = [x for x in re.split(r"[:,]", key) if x]
    head = parts[0]
    m = re.fullmatch(r"([a-z-]+?)-?(\d+)?", head)
    base, num = (m.group(1), m.group(2)) if m else (head, None)
    rest = parts[1:]
    if num is None and rest and rest[0].isdigit():
        num, rest = rest[0], rest[1:]

    def res(default: int, allowed: tuple[int, ...]) -> int:
        for r in rest:
            mm = re.fullmatch(r"(\d)mm", r)
            if mm:
                v = int(mm.group(1))
                if v not in allowed:
                    raise AtlasError(f"atlas={s!r}: resolution {v}mm not available; "
                                     f"allowed: {allowed}")
                return v
        return default

    try:
        if base == "difumo":
            dim = int(num or 64)
            if dim not in (64, 128, 256, 512, 1024):
                raise AtlasError(f"atlas={s!r}: DiFuMo dimension must be one of "
                                 f"64, 128, 256, 512, 1024; got {dim}.")
            r = res(2, (2, 3))
            obj = datasets.fetch_atlas_difumo(dimension=dim, resolution_mm=r,
                                              data_dir=data_dir, verbose=0)
            return _save_fetched(obj, f"difumo{dim}_{r}mm", data_dir)
        if base == "schaefer":
            n = int(num or 400)
            if n not in range(100, 1001, 100):
                raise AtlasError(f"atlas={s!r}: Schaefer n_rois must be 100, 200, ..., 1000; "
                                 f"got {n}.")
            nets = next((int(x) for x in rest if x in ("7", "17")), 7)
            r = res(1, (1, 2))
            obj = datasets.fetch_atlas_schaefer_2018(n_rois=n, yeo_networks=nets,
                                                     resolution_mm=r, data_dir=data_dir,
                                                     verbose=0)
            return _save_fetched(obj, f"schaefer{n}_{nets}net_{r}mm", data_dir)
        if base in ("harvard-oxford", "harvardoxford", "ho"):
            name = rest[0] if rest else "cort-maxprob-thr25-2mm"
            obj = datasets.fetch_atlas_harvard_oxford(name, data_dir=data_dir, verbose=0)
            return _save_fetched(obj, f"harvard-oxford_{name}", data_dir)
        if base == "msdl":
            obj = datasets.fetch_atlas_msdl(data_dir=data_dir, verbose=0)
            return _save_fetched(obj, "msdl", data_dir)
    except AtlasError:
        raise
    except Exception as e:  # noqa: BLE001 - network or file errors from the fetcher
        raise AtlasError(
            f"atlas={s!r}: could not load it from data_dir={str(data_dir)!r} nor download it "
            f"({type(e).__name__}: {e}). Run once with network access and the same "
            "--atlas-dir to cache it, or pass the atlas image as a file.") from e
    raise AtlasError(f"atlas={s!r}: not a file and not a known atlas name. Pass a NIfTI "
                     f"labels/maps file or one of: {atlas_help()}.")


# ---------------------------------------------------------------------- extractors
def _same_grid(a_shape, a_affine, b_shape, b_affine) -> bool:
    return tuple(a_shape[:3]) == tuple(b_shape[:3]) and np.allclose(a_affine, b_affine,
                                                                    atol=1e-5)


def _onto_image_grid(atlas_img, ref_img, interpolation: str, masker: str):
    """``(atlas on ref_img's grid, resampled?)``: resample the atlas to the image, with a
    warning, when their grids differ, as the nilearn ``masker`` does."""
    import nibabel as nib
    from nilearn.image import resample_img

    if _same_grid(atlas_img.shape, atlas_img.affine, ref_img.shape, ref_img.affine):
        return atlas_img, False
    vox = lambda img: np.round(nib.affines.voxel_sizes(img.affine), 2).tolist()  # noqa: E731
    warnings.warn(
        f"atlas grid {tuple(atlas_img.shape[:3])} (voxel {vox(atlas_img)} mm) differs from the "
        f"image grid {tuple(ref_img.shape[:3])} (voxel {vox(ref_img)} mm); the atlas was "
        f"resampled to the image ({interpolation}), as {masker} does.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Resampling binary images")
        out = resample_img(atlas_img, interpolation=interpolation, target_shape=ref_img.shape[:3],
                           target_affine=ref_img.affine, force_resample=True, copy_header=True)
    return out, True


class MapsExtractor:
    """Fast equivalent of ``NiftiMapsMasker(maps_img).transform`` (no cleaning).

    Parameters
    ----------
    maps_img : 4D probabilistic maps image (path or Nifti1Image).

    Notes
    -----
    nilearn solves ``min_S ||X - A S||`` per run with a dense least squares over every
    voxel (``scipy.linalg.lstsq`` on a voxels x maps matrix). The solution is
    ``S = pinv(A^T A) A^T X``; ``fit`` keeps ``A^T`` sparse (only voxels some map touches)
    and ``pinv(A^T A)`` dense (maps x maps), so each run costs one sparse product and one
    small dense one. ``pinvh`` gives the same minimum-norm answer as ``lstsq`` when maps
    are degenerate.
    """

    def __init__(self, maps_img):
        self.maps_img = maps_img

    def fit(self, ref_img):
        import nibabel as nib
        from scipy import linalg, sparse

        maps = nib.load(str(self.maps_img)) if isinstance(self.maps_img, (str, Path)) \
            else self.maps_img
        if maps.ndim != 4:
            raise AtlasError(f"maps image must be 4D, got shape {maps.shape}")
        maps, self.resampled_ = _onto_image_grid(maps, ref_img, "linear", "NiftiMapsMasker")
        data = np.asarray(maps.dataobj, dtype=np.float64)
        if not np.isfinite(data).all():
            raise AtlasError("maps image has non-finite values")
        support = np.any(data != 0, axis=-1)                     # (x, y, z)
        A = sparse.csr_matrix(data[support])                     # (V, R)
        if A.nnz == 0:
            raise AtlasError("no map left after resampling the maps to the image grid")
        gram = (A.T @ A).toarray()                               # (R, R)
        self.gram_pinv_ = linalg.pinvh(gram)
        self.proj_ = A.T.tocsr()                                 # (R, V)
        self.support_ = support
        self.shape_ = tuple(ref_img.shape[:3])
        self.affine_ = np.asarray(ref_img.affine)
        self.n_regions_ = data.shape[-1]
        return self

    def transform_array(self, data4d: np.ndarray) -> np.ndarray:
        """(x, y, z, t) array on the fitted grid -> (t, n_regions) float64."""
        X = np.asarray(data4d[self.support_], dtype=np.float64)  # (V, T)
        return (self.gram_pinv_ @ (self.proj_ @ X)).T             # (T, R)

    def transform(self, img) -> np.ndarray:
        return self.transform_array(np.asanyarray(img.dataobj))


class LabelsExtractor:
    """Fast equivalent of ``NiftiLabelsMasker(labels_img).transform`` (mean strategy).

    Regions that vanish after resampling are dropped, as nilearn does; ``labels_`` gives
    the label value of each output column.
    """

    def __init__(self, labels_img, background_label: int = 0):
        self.labels_img = labels_img
        self.background_label = background_label

    def fit(self, ref_img):
        import nibabel as nib
        from scipy import sparse

        lab = nib.load(str(self.labels_img)) if isinstance(self.labels_img, (str, Path)) \
            else self.labels_img
        lab, self.resampled_ = _onto_image_grid(lab, ref_img, "nearest", "NiftiLabelsMasker")
        data = np.asarray(lab.dataobj).reshape(lab.shape[:3])
        data = np.round(data).astype(np.int64)
        inside = data != self.background_label
        values, inverse, counts = np.unique(data[inside], return_inverse=True,
                                            return_counts=True)
        if len(values) == 0:
            raise AtlasError("no label left after resampling the atlas to the image grid")
        n_vox = int(inside.sum())
        W = sparse.csr_matrix((1.0 / counts[inverse], (inverse, np.arange(n_vox))),
                              shape=(len(values), n_vox))        # (R, V)
        self.proj_ = W
        self.support_ = inside
        self.labels_ = [int(v) for v in values]
        self.shape_ = tuple(ref_img.shape[:3])
        self.affine_ = np.asarray(ref_img.affine)
        return self

    def transform_array(self, data4d: np.ndarray) -> np.ndarray:
        X = np.asarray(data4d[self.support_], dtype=np.float64)  # (V, T)
        return (self.proj_ @ X).T                                 # (T, R)

    def transform(self, img) -> np.ndarray:
        return self.transform_array(np.asanyarray(img.dataobj))


_CACHE: dict = {}


def get_extractor(spec: AtlasSpec, ref_img):
    """Fitted extractor for ``spec`` on ``ref_img``'s grid, cached per process.

    Returns ``(extractor, names, warnings)``; the warnings (e.g. resampling) are re-issued
    on every call so each recording reports them.
    """
    p = Path(spec.path)
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size, spec.kind,
           tuple(ref_img.shape[:3]), np.round(np.asarray(ref_img.affine), 5).tobytes())
    hit = _CACHE.get(key)
    if hit is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ex = (MapsExtractor if spec.kind == "maps" else LabelsExtractor)(str(p)).fit(ref_img)
        if len(_CACHE) > 8:
            _CACHE.clear()
        hit = _CACHE[key] = (ex, [str(w.message) for w in caught])
    ex, msgs = hit
    # names come from this spec, not the cache: one image may be used with different label files
    names = list(spec.names) if spec.kind == "maps" else [spec.label_names.get(v, f"label{v}") for v in ex.labels_]
    for m in msgs:
        warnings.warn(m)
    return ex, names, msgs
