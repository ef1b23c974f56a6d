"""Overlap checks, by content: test data that reached the training side is refused.

Test stores (``decode.test_stores``) and a pretrained backbone's ``recordings.csv`` are
compared with the training data by the sha256 of each recording's source file and stored
array (a renamed copy is refused), and by recording and group ids; one recording stored
twice under two groups is refused too (a fold could train on a copy of its test data).
An overlap is an error that names the recordings, unless ``decode.transductive`` is set,
which records it in ``metrics.json``.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from neuroconv.data import SequenceStore

__all__ = ["check", "check_test_stores", "check_duplicates", "check_pretrained", "check_pretraining_overlap",
           "record_keys", "recording_table", "content_overlap", "RECORD_COLUMNS", "CONTENT_COLUMNS"]

#: manifest columns that identify a recording and its groups (written to pretraining's record)
RECORD_COLUMNS = ("id", "subject", "session", "run", "site", "dataset", "task")
#: what a recording is whatever its name: its source files' and stored array's sha256
CONTENT_COLUMNS = ("source_sha256", "array_sha256")


def recording_table(stores: Sequence[SequenceStore], samples: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per recording (of ``samples``, or of every store): ``store_path``,
    ``store``, the identifying manifest columns :data:`RECORD_COLUMNS`, and what the
    recording is whatever its name (:data:`CONTENT_COLUMNS`, from
    :meth:`~neuroconv.data.SequenceStore.content`)."""
    parts = []
    for s, store in enumerate(stores):
        man = store.manifest
        if samples is not None:
            man = man[man["id"].isin(set(samples.loc[samples["store"] == s, "id"].astype(str)))]
        cols = [c for c in RECORD_COLUMNS if c in man.columns]
        part = man[cols].assign(store=s, store_path=str(store.path.resolve()))
        parts.append(part.merge(store.content(list(man["id"])), on="id", how="left"))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["store", "store_path", "id"])
    return out[["store_path", "store"] + [c for c in RECORD_COLUMNS + CONTENT_COLUMNS if c in out.columns]]


def content_overlap(first: pd.DataFrame, second: pd.DataFrame) -> list[tuple[str, str, str]]:
    """Recordings of ``second`` that are recordings of ``first`` by content: the same
    primary source file (sha256) or the same stored array, whatever their ids, stores or
    data-set names. Both are :func:`recording_table` frames; returns ``(second's
    store:id, first's store:id, "source file" | "array")`` triples, one per recording of
    ``second`` found in ``first``."""
    def keys(table):
        return (table["store_path"].astype(str) + ":" + table["id"].astype(str)).tolist()

    def values(table, column):
        return (table[column].fillna("").astype(str) if column in table.columns else
                pd.Series([""] * len(table))).tolist()

    hits, found = [], set()
    for column, what in (("source_sha256", "source file"), ("array_sha256", "array")):
        seen = {}
        for key, v in zip(keys(first), values(first, column)):
            if v:
                seen.setdefault(v, key)
        for key, v in zip(keys(second), values(second, column)):
            if v in seen and key not in found:
                found.add(key)
                hits.append((key, seen[v], what))
    return hits


def check(stores, n_train: int, samples: pd.DataFrame, fold_tests: dict, backbone, group_by: str,
          transductive: bool, log) -> dict:
    """Every overlap check of a decode run, by content (each raises unless
    ``transductive``, which records what it found): test stores that hold training
    recordings, one recording stored twice under two groups, and a pretrained backbone
    that saw test data. ``samples``: the design's samples (``store``, ``id``, ``group``);
    ``fold_tests``: fold index -> the samples it tests; ``backbone``: its ``run`` and
    ``record`` (recordings.csv). Returns what metrics.json records."""
    out = {}
    is_test = samples["store"].to_numpy() >= n_train
    if is_test.any():
        out["test_stores"] = check_test_stores(recording_table(stores[:n_train], samples[~is_test]),
                                               recording_table(stores, samples[is_test]), transductive, log)
    else:
        keys = samples["store"].map(lambda s: str(stores[s].path.resolve())) + ":" + samples["id"].astype(str)
        out["duplicates"] = check_duplicates(recording_table(stores, samples), dict(zip(keys, samples["group"])),
                                             transductive, log)
    if backbone.run is not None:
        tests = {f: recording_table(stores, samples.iloc[idx]) for f, idx in fold_tests.items()}
        out["pretraining"] = check_pretrained(backbone.record, backbone.run, tests, group_by, transductive, log)
    return out


def record_keys(table: pd.DataFrame, column: str | None) -> pd.Series:
    """Identity of each row of a recording table: ``dataset-or-store:id`` (recordings) or
    ``dataset-or-store:value`` of ``column`` (groups), as
    :func:`~neuroconv.brain.data.sample_groups` builds them."""
    scope = table["store_path"].astype(str)
    if "dataset" in table.columns:
        ds = table["dataset"]
        scope = scope.where(ds.isna() | (ds.astype(str) == ""), ds.astype(str))
    if column is None:
        return scope + ":" + table["id"].astype(str)
    vals = table[column]
    missing = vals.isna() | vals.astype(str).str.strip().str.lower().isin(["", "nan", "none", "n/a", "na"])
    return (scope + ":" + vals.astype(str)).where(~missing, "recording:" + table["store_path"].astype(str) + ":"
                                                  + table["id"].astype(str))


def check_pretraining_overlap(record: pd.DataFrame, test: pd.DataFrame, group_by: str) -> dict:
    """What a pretrained backbone saw of one test fold: ``{"recordings": [...],
    "groups": [...], "content": [...]}`` (empty lists when nothing). ``record``: the
    pretrain run's recordings.csv; ``test``: the test fold's recording table
    (:func:`recording_table`). ``content`` lists test recordings
    whose source file or stored array pretraining saw under any name. A ``group_by``
    column that the record lacks is an error (the group check cannot be made)."""
    if group_by != "id" and group_by not in record.columns:
        raise ValueError(f"the pretraining record (recordings.csv) has no {group_by!r} column, so decode cannot check "
                         f"that pretraining never saw a test {group_by}. Pretrain again with this version of "
                         "neuroconv, or choose a decode.group_by the record has: "
                         f"{sorted(c for c in record.columns if c not in ('store_path', 'store', 'split'))}.")
    rec_seen = set(record_keys(record, None))
    overlap_rec = sorted(set(record_keys(test, None)) & rec_seen)
    overlap_grp = []
    if group_by != "id" and group_by in test.columns:
        overlap_grp = sorted(set(record_keys(test, group_by)) & set(record_keys(record, group_by)))
    content = [f"{a} = {b} ({what})" for a, b, what in content_overlap(record, test)]
    return {"recordings": overlap_rec, "groups": overlap_grp, "content": content}


def check_test_stores(train_table: pd.DataFrame, test_table: pd.DataFrame, transductive: bool, log) -> list:
    """Refuse (or, transductive, record) external test recordings that are training ones."""
    hits = content_overlap(train_table, test_table)
    lines = [f"{a} is {b} (same {what})" for a, b, what in hits]
    if hits and not transductive:
        raise ValueError(
            f"{len(hits)} recording(s) of decode.test_stores are training recordings by content: "
            + "; ".join(lines[:5]) + (" ..." if len(lines) > 5 else "")
            + ". A renamed or re-preprocessed copy of training data is not a test set: test on recordings the "
              "training stores do not hold, or pass --transductive to accept it (recorded in metrics.json)."
        )
    if hits:
        log(f"warning: transductive setting: {len(hits)} test recording(s) are training recordings by content "
            "(recorded in metrics.json test_store_overlap)")
    return lines


def check_duplicates(table: pd.DataFrame, groups_by_key: dict, transductive: bool, log) -> list:
    """One recording stored twice under two groups would sit on both sides of a fold."""
    lines = []
    for column, what in (("source_sha256", "source file"), ("array_sha256", "array")):
        if column not in table.columns:
            continue
        keys = table["store_path"].astype(str) + ":" + table["id"].astype(str)
        for value, part in pd.DataFrame({"v": table[column].fillna(""), "k": keys}).groupby("v"):
            if not value or len(part) < 2:
                continue
            groups = {groups_by_key.get(k) for k in part["k"]}
            if len(groups) > 1:
                lines.append(f"{' = '.join(part['k'])} (same {what}, groups {sorted(map(str, groups))})")
    if lines and not transductive:
        raise ValueError(
            f"{len(lines)} recording(s) appear twice in the decode data under different groups, so a fold could "
            "train on a copy of its test data: " + "; ".join(lines[:3]) + (" ..." if len(lines) > 3 else "")
            + ". Remove the copies from the stores, or pass --transductive to accept it (recorded in metrics.json)."
        )
    if lines:
        log(f"warning: {len(lines)} recording(s) appear twice under different groups (transductive)")
    return lines


def check_pretrained(record, pre_run, fold_tests: dict, group_by: str, transductive: bool, log) -> dict:
    """Refuse (or, with ``transductive``, record) a pretrained backbone that saw test data.
    ``record``: its recordings.csv (None: it has none, accepted only transductively);
    ``fold_tests``: fold index -> the recording table of that fold's test samples."""
    if record is None:
        seen = {"unchecked": f"{pre_run} has no record of its pretraining recordings"}
        log(f"warning: {seen['unchecked']}; --transductive accepted it")
        return seen
    if not set(("source_sha256", "array_sha256")) & set(record.columns) and not transductive:
        raise ValueError(f"{pre_run}/recordings.csv records no content checksums, so decode cannot recognise a "
                         "test recording that pretraining saw under another name. Pretrain again with this version "
                         "of neuroconv, or pass --transductive to accept the risk (recorded in metrics.json).")
    overlap = {}
    for f, table in fold_tests.items():
        seen = check_pretraining_overlap(record, table, group_by)
        if seen["recordings"] or seen["groups"] or seen["content"]:
            overlap[str(f)] = seen
    if overlap and not transductive:
        f, seen = next(iter(overlap.items()))
        what = seen["groups"][:3] or seen["recordings"][:3] or seen["content"][:3]
        raise ValueError(
            f"the pretrained backbone in {pre_run} saw test data of {len(overlap)} fold(s): fold {f} tests "
            f"{len(seen['recordings'])} recording(s), {len(seen['groups'])} {group_by} group(s) and "
            f"{len(seen['content'])} recording(s) by content that pretraining saw (e.g. {', '.join(map(str, what))}). "
            "Pretrain on other groups (other subjects, sites or data sets; see its recordings.csv), or set "
            "decode.pretrain_in_fold true to pretrain inside each fold, or pass --transductive to accept the overlap "
            "(it is recorded in metrics.json)."
        )
    if overlap:
        log(f"warning: transductive setting: the pretrained backbone saw test data of {len(overlap)} fold(s) "
            "(recorded in metrics.json pretraining_overlap)")
    return overlap
