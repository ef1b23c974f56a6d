"""Loaders for the released long-range-arena (LRA) files, read from a local directory.

Nothing here downloads. Each loader is a ``torch.utils.data.Dataset`` whose items are
``(x, label)`` (``((x1, x2), label)`` for Retrieval) and whose :meth:`collate` builds the
common :class:`neuroconv.lra.tokens.Batch`::

    ds = lra_dataset("listops", "/data/lra_release/listops-1000", split="train")
    loader = DataLoader(ds, batch_size=50, shuffle=True, collate_fn=ds.collate)
    inputs, lengths, labels = next(iter(loader))   # (B, L_pad), (B,), (B,)

On-disk formats accepted (``data_dir`` may be the folder named below or its parent, e.g.
the unpacked ``lra_release`` folder):

==============  ============================================================================
task            files
==============  ============================================================================
``listops``     ``basic_{train,val,test}.tsv``: tab-separated, header row, columns
                ``Source`` (the expression) and ``Target`` (0-9). Release folder
                ``listops-1000/``; :func:`neuroconv.lra.write_listops` writes the same.
``text``        IMDB in the Stanford ``aclImdb`` layout (the archive ``aclImdb_v1.tar.gz``
                that TFDS ``imdb_reviews`` is built from): ``{train,test}/{pos,neg}/*.txt``,
                one review per file, label ``pos`` = 1, ``neg`` = 0. Byte level, 4096
                tokens. IMDB has no validation split: ``val`` is a seeded 10% of the
                training reviews (held out of ``train``), so no choice is made on the
                test set; ``validation="test"`` restores the LRA release's protocol,
                which validates on the test reviews.
``retrieval``   ``new_aan_pairs.{train,eval,test}.tsv`` (release folder ``tsv_data/``): no
                header, 5 tab-separated fields ``label id1 id2 text1 text2``, label 0/1
                (``"1.0"`` accepted). Byte level, 4000 tokens per document. ``val`` reads
                ``eval``.
``image``       CIFAR-10 python pickles ``cifar-10-batches-py/{data_batch_1..5,
                test_batch}``, grayscale, length 1024. ``val`` is the last 10% of the
                training images. ``scifar`` is the same files in colour (D = 3).
``pathfinder``  ``pathfinder{32,64,128}/curv_{baseline,contour_length_9,
``pathx``       contour_length_14}/``, each with ``imgs/<n>/sample_<i>.png`` and
                ``metadata/<n>.npy``. Path-X is ``pathfinder128``. Train/val/test is an
                80/10/10 random split (seed 42), the authors' convention.
==============  ============================================================================

Missing files raise ``FileNotFoundError`` listing every expected path.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .tokens import (
    BYTE_VOCAB,
    LISTOPS_VOCAB,
    PAD_ID,
    Batch,
    collate,
    collate_pairs,
    encode_bytes,
    encode_listops,
)

__all__ = [
    "LRADataset",
    "ListOpsDataset",
    "ImdbDataset",
    "AanDataset",
    "Cifar10Dataset",
    "PathfinderDataset",
    "LRA_TASKS",
    "lra_dataset",
    "PATHFINDER_DIFFICULTIES",
    "load_cifar_batch",
    "read_pathfinder_metadata",
]

_RELEASE_HINT = (
    "The LRA files come from lra_release.gz (github.com/google-research/long-range-arena); "
    "unpack it and pass the task's folder (or its parent) as the data directory."
)
_SPLITS = ("train", "val", "test")


def _check_split(split: str, allowed=_SPLITS) -> str:
    if split not in allowed:
        raise ValueError(f"`split` must be one of {list(allowed)}; got {split!r}.")
    return split


def _missing_error(task: str, data_dir: Path, expected: list[Path], hint: str = "") -> FileNotFoundError:
    lines = [f"{task}: required files not found under {data_dir}. Expected:"]
    for p in expected:
        lines.append(f"  {p}  [{'found' if p.exists() else 'MISSING'}]")
    if hint:
        lines.append(hint)
    return FileNotFoundError("\n".join(lines))


def _resolve(data_dir, task: str, subdirs: tuple[str, ...], probe: str) -> Path:
    """The folder holding ``probe``: ``data_dir`` itself or one of ``data_dir/subdir``."""
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{task}: data directory {data_dir} does not exist. {_RELEASE_HINT}")
    for cand in (data_dir, *(data_dir / s for s in subdirs)):
        if (cand / probe).exists():
            return cand
    return data_dir


class LRADataset(Dataset):
    """Common interface of the LRA loaders.

    Attributes (class level, read by the training code):
        task: task name in :data:`LRA_TASKS`.
        n_classes: number of classes.
        vocab_size: token vocabulary (``None`` when inputs are float features).
        d_input: features per step (``None`` when inputs are token ids).
        pairs: True when every example holds two documents (Retrieval).
        l_max: the longest sequence this dataset yields.
    """

    task: str = ""
    n_classes: int = 0
    vocab_size: int | None = None
    d_input: int | None = None
    pairs: bool = False
    l_max: int = 0
    pad_value: float = PAD_ID

    def collate(self, items) -> Batch:
        """Pad a list of this dataset's items into a :class:`~neuroconv.lra.tokens.Batch`."""
        fn = collate_pairs if self.pairs else collate
        return fn(items, pad_value=self.pad_value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, split={getattr(self, 'split', None)!r}, n={len(self)})"


# --------------------------------------------------------------------------- ListOps


class ListOpsDataset(LRADataset):
    """ListOps: evaluate a nested expression of MIN, MAX, MED (median) and SM (sum mod
    10) over digits; 10 classes.

    Parameters:
        data_dir: folder with ``{prefix}_{train,val,test}.tsv`` (or its parent holding
            ``listops-1000/``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        max_length: longest token sequence, ``<eos>`` included (the authors use 2048);
            longer expressions are truncated.
        append_eos: end every sequence with ``<eos>``.
        prefix: file prefix (``"basic"`` in the release).

    Items: ``(tokens int64 (L,), label int)``, ids from
    :data:`~neuroconv.lra.tokens.LISTOPS_VOCAB`.
    """

    task, n_classes, vocab_size = "listops", 10, len(LISTOPS_VOCAB)

    def __init__(self, data_dir, split: str = "train", *, max_length: int = 2048,
                 append_eos: bool = True, prefix: str = "basic"):
        self.split = _check_split(split)
        self.max_length, self.append_eos, self.l_max = max_length, append_eos, max_length
        encode_listops("0", max_length=max_length, append_eos=append_eos)  # validates arguments
        root = _resolve(data_dir, self.task, ("listops-1000", "listops"), f"{prefix}_{split}.tsv")
        path = root / f"{prefix}_{split}.tsv"
        if not path.is_file():
            raise _missing_error(
                self.task, root, [root / f"{prefix}_{s}.tsv" for s in _SPLITS],
                "Tab-separated with a header row 'Source<TAB>Target'. " + _RELEASE_HINT
                + " Or generate them offline: neuroconv.lra.write_listops(DIR).",
            )
        self.path = path
        self.sources, self.labels = _read_listops_tsv(path)

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int):
        try:
            ids = encode_listops(self.sources[i], max_length=self.max_length, append_eos=self.append_eos)
        except ValueError as e:
            raise ValueError(f"{self.path}, data row {i + 1}: {e}") from None
        return torch.from_numpy(ids), self.labels[i]


def _read_listops_tsv(path: Path) -> tuple[list[str], list[int]]:
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    if not lines:
        raise ValueError(f"{path} is empty; expected a header row 'Source<TAB>Target' and data rows.")
    header = lines[0].split("\t")
    if "Source" not in header or "Target" not in header:
        raise ValueError(f"{path}: header must name the columns 'Source' and 'Target'; got {header!r}.")
    si, ti, n = header.index("Source"), header.index("Target"), len(header)
    sources, labels = [], []
    for row, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != n:
            raise ValueError(f"{path}, line {row}: expected {n} tab-separated fields; got {len(fields)}.")
        try:
            label = int(fields[ti])
        except ValueError:
            label = -1
        if not 0 <= label <= 9:
            raise ValueError(f"{path}, line {row}: Target must be an integer 0-9; got {fields[ti]!r}.")
        sources.append(fields[si])
        labels.append(label)
    return sources, labels


# --------------------------------------------------------------------------- Text (IMDB)


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


class ImdbDataset(LRADataset):
    """Text: IMDB sentiment (2 classes: 0 = negative, 1 = positive), byte level.

    Parameters:
        data_dir: the ``aclImdb`` folder (with ``train/`` and ``test/``) or its parent.
        split: ``"train"``, ``"val"`` or ``"test"``.
        max_length: longest byte sequence, ``<eos>`` included (LRA "4K": 4096 as the
            authors' configs); longer reviews are truncated.
        append_eos: end every sequence with ``<eos>``.
        validation: ``"train"`` (default): ``"val"`` is a random ``val_fraction`` of the
            training reviews (drawn with ``seed``) and ``"train"`` is the rest;
            ``"test"``: ``"val"`` reads the test reviews, as LRA does (IMDB has no
            validation split), so a model chosen on it is chosen on the test set.
        val_fraction, seed: size and seed of the held-out validation reviews.

    Reviews are the raw file bytes (UTF-8, ``<br />`` tags kept, as TFDS
    ``imdb_reviews``); order: ``neg`` then ``pos``, files in natural name order.
    Items: ``(tokens int64 (L,), label int)``, ids from
    :data:`~neuroconv.lra.tokens.BYTE_VOCAB`.
    """

    task, n_classes, vocab_size = "text", 2, len(BYTE_VOCAB)

    def __init__(self, data_dir, split: str = "train", *, max_length: int = 4096, append_eos: bool = True,
                 validation: str = "train", val_fraction: float = 0.1, seed: int = 0):
        self.split = _check_split(split)
        self.max_length, self.append_eos, self.l_max = max_length, append_eos, max_length
        encode_bytes(b"", max_length=max_length, append_eos=append_eos)  # validates arguments
        if validation not in ("train", "test"):
            raise ValueError(f"`validation` must be 'train' (held out of the training reviews) or 'test' (the LRA "
                             f"release's protocol); got {validation!r}.")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"`val_fraction` must be in (0, 1); got {val_fraction!r}.")
        from_train = split == "train" or (split == "val" and validation == "train")
        folder = "train" if from_train else "test"
        root = _resolve(data_dir, self.task, ("aclImdb", "imdb/aclImdb", "imdb"), "train")
        expected = [root / s / c for s in ("train", "test") for c in ("neg", "pos")]
        dirs = [root / folder / "neg", root / folder / "pos"]
        if not all(d.is_dir() for d in dirs):
            raise _missing_error(
                self.task, root, expected,
                "IMDB in the Stanford aclImdb layout: <dir>/{train,test}/{pos,neg}/*.txt "
                "(ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz).",
            )
        keep = max_length - int(append_eos)
        self.texts, self.labels = [], []
        for label, d in enumerate(dirs):
            files = sorted(d.glob("*.txt"), key=_natural_key)
            if not files:
                raise _missing_error(self.task, root, [d / "*.txt"], "Each review is one .txt file.")
            for f in files:
                self.texts.append(f.read_bytes()[:keep])
                self.labels.append(label)
        if from_train and validation == "train":
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(self.texts))
            n_val = max(1, int(round(val_fraction * len(order))))
            keep_idx = np.sort(order[:n_val] if split == "val" else order[n_val:])
            self.texts = [self.texts[i] for i in keep_idx]
            self.labels = [self.labels[i] for i in keep_idx]

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int):
        ids = encode_bytes(self.texts[i], max_length=self.max_length, append_eos=self.append_eos)
        return torch.from_numpy(ids), self.labels[i]


# --------------------------------------------------------------------------- Retrieval (AAN)


class AanDataset(LRADataset):
    """Retrieval: do two ACL Anthology papers cite each other? (2 classes), byte level,
    two documents per example.

    Parameters:
        data_dir: folder with ``new_aan_pairs.{train,eval,test}.tsv`` (or its parent
            holding ``tsv_data/``).
        split: ``"train"``, ``"val"`` (reads ``eval``) or ``"test"``.
        max_length: longest byte sequence per document, ``<eos>`` included (4000 as
            LRA and the authors' configs).
        append_eos: end every document with ``<eos>``.

    Fields are split on tabs only (the LRA reader turns quoting off). Items:
    ``((tokens1 int64 (L1,), tokens2 int64 (L2,)), label int)``; :meth:`collate` stacks
    the documents as described in :mod:`neuroconv.lra.tokens`.
    """

    task, n_classes, vocab_size, pairs = "retrieval", 2, len(BYTE_VOCAB), True

    def __init__(self, data_dir, split: str = "train", *, max_length: int = 4000, append_eos: bool = True):
        self.split = _check_split(split)
        self.max_length, self.append_eos, self.l_max = max_length, append_eos, max_length
        encode_bytes(b"", max_length=max_length, append_eos=append_eos)  # validates arguments
        name = {"train": "train", "val": "eval", "test": "test"}[split]
        root = _resolve(data_dir, self.task, ("tsv_data", "aan"), f"new_aan_pairs.{name}.tsv")
        path = root / f"new_aan_pairs.{name}.tsv"
        if not path.is_file():
            raise _missing_error(
                self.task, root, [root / f"new_aan_pairs.{s}.tsv" for s in ("train", "eval", "test")],
                "No header; fields: label<TAB>id1<TAB>id2<TAB>text1<TAB>text2. " + _RELEASE_HINT,
            )
        self.path = path
        keep = max_length - int(append_eos)
        self.texts1, self.texts2, self.labels = [], [], []
        with open(path, "rb") as f:
            for row, line in enumerate(f, start=1):
                line = line.rstrip(b"\r\n")
                if not line.strip():
                    continue
                fields = line.split(b"\t")
                if len(fields) != 5:
                    raise ValueError(
                        f"{path}, line {row}: expected 5 tab-separated fields "
                        f"(label, id1, id2, text1, text2); got {len(fields)}."
                    )
                try:
                    value = float(fields[0])
                except ValueError:
                    value = -1.0
                if value not in (0.0, 1.0):
                    raise ValueError(f"{path}, line {row}: label must be 0 or 1; got {fields[0][:20]!r}.")
                self.labels.append(int(value))
                self.texts1.append(fields[3][:keep])
                self.texts2.append(fields[4][:keep])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        kw = dict(max_length=self.max_length, append_eos=self.append_eos)
        x1 = torch.from_numpy(encode_bytes(self.texts1[i], **kw))
        x2 = torch.from_numpy(encode_bytes(self.texts2[i], **kw))
        return (x1, x2), self.labels[i]


# --------------------------------------------------------------------------- Image (CIFAR-10)


def _numpy_global(module: str, name: str):
    """The numpy object behind an allowed pickle global (numpy 1 or 2 module names)."""
    if name in ("ndarray", "dtype") and module == "numpy":
        return getattr(np, name)
    if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        core = getattr(np, "_core", None)
        if core is not None and hasattr(core, "multiarray"):
            return core.multiarray._reconstruct
        return np.core.multiarray._reconstruct  # numpy < 2
    return None


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy array-reconstruction globals.

    A CIFAR-10 batch is a plain dict of numpy arrays, lists, str and bytes; any other
    global (the way a malicious pickle runs code) raises ``pickle.UnpicklingError``.
    """

    def find_class(self, module, name):
        obj = _numpy_global(module, name)
        if obj is None:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch only needs numpy arrays."
            )
        return obj


def load_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch file safely.

    The file is a pickled dict with ``data`` (``(N, 3072)`` uint8, the red, green and
    blue 32x32 planes of each image, row-major) and ``labels`` (N ints 0-9); keys may be
    ``str`` or ``bytes``. Only numpy's array-reconstruction globals are allowed.

    Returns ``images (N, 32, 32, 3) uint8`` and ``labels (N,) int64``.
    """
    path = Path(path)
    with open(path, "rb") as f:
        try:
            obj = _NumpyOnlyUnpickler(f, encoding="latin1").load()
        except pickle.UnpicklingError as e:
            raise ValueError(f"{path}: not a CIFAR-10 batch: {e}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict; got {type(obj).__name__}.")
    obj = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    if "data" not in obj or "labels" not in obj:
        raise ValueError(f"{path}: a CIFAR-10 batch needs the keys 'data' and 'labels'; got {sorted(obj)}.")
    data = np.asarray(obj["data"])
    labels = np.asarray(obj["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != data.shape[0]:
        raise ValueError(
            f"{path}: expected data (N, 3072) uint8 and N labels; got data {data.shape} {data.dtype}, "
            f"{len(labels)} labels."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be 0-9.")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N H W C)
    return np.ascontiguousarray(images), labels


def _to_gray(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 -> ``(N, H, W)`` uint8 luma, exactly as PIL ``convert("L")``
    (ITU-R 601-2, fixed point), which torchvision's ``Grayscale`` uses."""
    rgb = images.astype(np.uint32)
    y = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return y.astype(np.uint8)


_CIFAR_GRAY_MEAN, _CIFAR_GRAY_STD = 122.6 / 255.0, 61.0 / 255.0
_CIFAR_RGB_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
_CIFAR_RGB_STD = np.array([0.247, 0.243, 0.261], dtype=np.float32)


class Cifar10Dataset(LRADataset):
    """Image (LRA): CIFAR-10 as a sequence of 1024 pixels, row-major; 10 classes.

    Parameters:
        data_dir: the ``cifar-10-batches-py`` folder or its parent.
        split: ``"train"`` (the first ``1 - val_fraction`` of ``data_batch_1..5`` in file
            order), ``"val"`` (the rest) or ``"test"`` (``test_batch``).
        grayscale: LRA Image (True, D = 1) or sequential CIFAR, sCIFAR (False, D = 3).
        tokenize: return pixel intensities 0-255 as int64 token ids ``(1024,)`` (LRA
            style, grayscale only) instead of normalized floats.
        val_fraction: fraction of the 50000 training images held out for ``"val"``.

    Float inputs are normalized as in the authors' pipeline: grayscale
    ``(x/255 - 122.6/255) / (61/255)``, colour per channel with the CIFAR mean
    ``(0.4914, 0.4822, 0.4465)`` and std ``(0.247, 0.243, 0.261)``. Grayscale is PIL's
    ``convert("L")``. Items: ``(x, label)`` with ``x`` float32 ``(1024, D)`` or int64
    ``(1024,)``.
    """

    task, n_classes, l_max = "image", 10, 1024

    def __init__(self, data_dir, split: str = "train", *, grayscale: bool = True, tokenize: bool = False,
                 val_fraction: float = 0.1):
        self.split = _check_split(split)
        if tokenize and not grayscale:
            raise ValueError("`tokenize=True` needs `grayscale=True` (one intensity per pixel).")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"`val_fraction` must be in [0, 1); got {val_fraction!r}.")
        self.grayscale, self.tokenize, self.val_fraction = grayscale, tokenize, val_fraction
        if not grayscale:
            self.task = "scifar"
        self.vocab_size = 256 if tokenize else None
        self.d_input = None if tokenize else (1 if grayscale else 3)
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        root = _resolve(data_dir, self.task, ("cifar-10-batches-py",), "test_batch")
        wanted = names[5:] if split == "test" else names[:5]
        if not all((root / n).is_file() for n in wanted):
            raise _missing_error(
                self.task, root, [root / n for n in names],
                "The CIFAR-10 python version (cs.toronto.edu/~kriz/cifar-10-python.tar.gz), unpacked.",
            )
        parts = [load_cifar_batch(root / n) for n in wanted]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if split != "test":
            n_train = len(images) - int(round(val_fraction * len(images)))
            sl = slice(0, n_train) if split == "train" else slice(n_train, None)
            images, labels = images[sl], labels[sl]
        self.images = _to_gray(images) if grayscale else images  # (N 32 32) | (N 32 32 3) uint8
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        img = self.images[i]
        if self.tokenize:
            return torch.from_numpy(img.reshape(-1).astype(np.int64)), int(self.labels[i])  # (1024,)
        x = img.reshape(1024, -1).astype(np.float32) / 255.0  # (1024 D)
        if self.grayscale:
            x = (x - _CIFAR_GRAY_MEAN) / _CIFAR_GRAY_STD
        else:
            x = (x - _CIFAR_RGB_MEAN) / _CIFAR_RGB_STD
        return torch.from_numpy(x.astype(np.float32)), int(self.labels[i])


# --------------------------------------------------------------------------- Pathfinder / Path-X

PATHFINDER_DIFFICULTIES = {
    "easy": "curv_baseline",
    "intermediate": "curv_contour_length_9",
    "hard": "curv_contour_length_14",
}


def read_pathfinder_metadata(path) -> list[tuple[str, str, int]]:
    """Entries ``(image subfolder, file name, label)`` of one Pathfinder metadata file.

    The released ``metadata/<n>.npy`` files are plain text despite the suffix: one image
    per line, space-separated, ``imgs/<n> sample_<i>.png <i> <label> ...`` (11 fields
    from the generator; only the first four are read). A real ``.npy`` string array of
    the same rows (what the generator's ``np.save`` writes) is read too, without pickle.
    Raises ``ValueError`` naming the line of a malformed row.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b"\x93NUMPY"):
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
        rows = [[str(v) for v in r] for r in np.atleast_2d(arr)]
    else:
        rows = [line.split() for line in raw.decode("utf-8").splitlines()]
    out = []
    for n, fields in enumerate(rows, start=1):
        if not fields:
            continue
        if len(fields) < 4 or fields[3] not in ("0", "1"):
            raise ValueError(
                f"{path}, line {n}: expected 'imgs/<n> sample_<i>.png <i> <label 0|1> ...'; got {' '.join(fields)[:80]!r}."
            )
        out.append((fields[0], fields[1], int(fields[3])))
    return out


def _metadata_key(p: Path):
    return (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem)


class PathfinderDataset(LRADataset):
    """Pathfinder / Path-X: are the two marked dots joined by one contour? (2 classes).

    Parameters:
        data_dir: the ``lra_release`` folder (holding ``pathfinder{resolution}/``), the
            ``pathfinder{resolution}`` folder, or a difficulty folder itself (holding
            ``imgs/`` and ``metadata/``).
        resolution: 32, 64 or 128 (Path-X is 128); the sequence length is
            ``resolution ** 2``.
        difficulty: ``"easy"`` (``curv_baseline``), ``"intermediate"``
            (``curv_contour_length_9``) or ``"hard"`` (``curv_contour_length_14``, the
            one LRA uses), or a folder name.
        split: ``"train"``, ``"val"`` or ``"test"``.
        tokenize: return pixel intensities 0-255 as int64 ``(L,)`` instead of floats.
        val_fraction, test_fraction: split sizes; ``int(fraction * N)`` each.
        seed: seed of the random split. The split is ``torch.randperm(N)`` under
            ``torch.Generator().manual_seed(seed)`` cut into train/val/test, over the
            images in metadata order (files by number, lines in order): the same
            split as the authors' ``random_split`` (HazyResearch/safari).

    Empty image files (the release has one) are skipped with a warning; images named in
    the metadata but absent raise ``FileNotFoundError``. Float inputs are
    ``(x/255 - 0.5) / 0.5`` in ``[-1, 1]``, row-major. Items: ``(x, label)`` with ``x``
    float32 ``(L, 1)`` or int64 ``(L,)``.
    """

    task, n_classes = "pathfinder", 2

    def __init__(self, data_dir, resolution: int = 32, difficulty: str = "hard", split: str = "train", *,
                 tokenize: bool = False, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 42):
        self.split = _check_split(split)
        if resolution not in (32, 64, 128, 256):
            raise ValueError(f"`resolution` must be one of [32, 64, 128, 256]; got {resolution!r}.")
        if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
            raise ValueError(
                f"`val_fraction` and `test_fraction` must be >= 0 with sum < 1; got {val_fraction!r}, {test_fraction!r}."
            )
        folder = PATHFINDER_DIFFICULTIES.get(difficulty, difficulty)
        if not isinstance(folder, str) or not folder.startswith("curv_"):
            raise ValueError(
                f"`difficulty` must be one of {list(PATHFINDER_DIFFICULTIES)} or a 'curv_*' folder name; got {difficulty!r}."
            )
        self.resolution, self.difficulty, self.tokenize = resolution, folder, tokenize
        if resolution == 128:
            self.task = "pathx"
        self.l_max = resolution * resolution
        self.vocab_size = 256 if tokenize else None
        self.d_input = None if tokenize else 1

        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():
            raise FileNotFoundError(f"{self.task}: data directory {data_dir} does not exist. {_RELEASE_HINT}")
        candidates = [data_dir / f"pathfinder{resolution}" / folder, data_dir / folder, data_dir]
        root = next((c for c in candidates if (c / "metadata").is_dir()), None)
        if root is None:
            raise _missing_error(
                self.task, data_dir,
                [c / sub for c in candidates[:2] for sub in ("metadata", "imgs")],
                f"Pathfinder layout: pathfinder{resolution}/{folder}/imgs/<n>/sample_<i>.png and "
                f"pathfinder{resolution}/{folder}/metadata/<n>.npy. " + _RELEASE_HINT
                + " Or generate it offline: neuroconv.lra.write_pathfinder(DIR).",
            )
        meta_files = sorted(root.glob("metadata/*.npy"), key=_metadata_key)
        if not meta_files:
            raise _missing_error(self.task, root, [root / "metadata" / "<n>.npy"], "No metadata files.")
        samples, empty, missing = [], [], []
        for mf in meta_files:
            for sub, name, label in read_pathfinder_metadata(mf):
                p = root / sub / name
                try:
                    size = p.stat().st_size
                except FileNotFoundError:
                    missing.append(p)
                    continue
                if size == 0:
                    empty.append(p)
                else:
                    samples.append((p, label))
        if missing:
            shown = "\n".join(f"  {p}" for p in missing[:5])
            raise FileNotFoundError(
                f"{self.task}: {len(missing)} image(s) named in {root / 'metadata'} are missing, e.g.:\n{shown}"
            )
        if empty:
            warnings.warn(f"{self.task}: skipped {len(empty)} empty image file(s), e.g. {empty[0]}", stacklevel=2)
        if not samples:
            raise ValueError(f"{self.task}: no images listed in {root / 'metadata'}.")

        n = len(samples)
        n_val, n_test = int(val_fraction * n), int(test_fraction * n)
        n_train = n - n_val - n_test
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        cut = {"train": perm[:n_train], "val": perm[n_train:n_train + n_val], "test": perm[n_train + n_val:]}
        self.root = root
        self.samples = [samples[j] for j in cut[split]]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as im:
            img = np.asarray(im.convert("L"))
        if img.shape != (self.resolution, self.resolution):
            raise ValueError(f"{path}: expected a {self.resolution}x{self.resolution} image; got {img.shape}.")
        if self.tokenize:
            return torch.from_numpy(img.reshape(-1).astype(np.int64)), label  # (L,)
        x = (img.reshape(-1, 1).astype(np.float32) / 255.0 - 0.5) / 0.5  # (L 1)
        return torch.from_numpy(x), label


# --------------------------------------------------------------------------- registry


def _pathfinder(resolution: int) -> Callable[..., PathfinderDataset]:
    def make(data_dir, split="train", **kw):
        return PathfinderDataset(data_dir, kw.pop("resolution", resolution), split=split, **kw)
    make.__doc__ = f"PathfinderDataset with resolution={resolution} by default."
    return make


def _cifar(grayscale: bool) -> Callable[..., Cifar10Dataset]:
    def make(data_dir, split="train", **kw):
        return Cifar10Dataset(data_dir, split, grayscale=kw.pop("grayscale", grayscale), **kw)
    return make


LRA_TASKS: dict[str, Callable[..., LRADataset]] = {
    "listops": ListOpsDataset,
    "text": ImdbDataset,
    "retrieval": AanDataset,
    "image": _cifar(grayscale=True),
    "scifar": _cifar(grayscale=False),
    "pathfinder": _pathfinder(32),
    "pathx": _pathfinder(128),
}


def lra_dataset(task: str, data_dir, split: str = "train", **kwargs) -> LRADataset:
    """Build the loader of ``task`` for ``split`` from ``data_dir``.

    ``task`` is one of :data:`LRA_TASKS`: ``listops``, ``text`` (IMDB), ``retrieval``
    (AAN), ``image`` (grayscale CIFAR-10), ``scifar`` (colour CIFAR-10), ``pathfinder``
    (32x32 by default; pass ``resolution=64``) and ``pathx`` (Pathfinder 128x128).
    ``kwargs`` go to the loader's constructor.
    """
    if task not in LRA_TASKS:
        raise ValueError(f"`task` must be one of {list(LRA_TASKS)}; got {task!r}.")
    return LRA_TASKS[task](data_dir, split=split, **kwargs)
