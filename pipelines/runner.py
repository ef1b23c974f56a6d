"""Run per-recording jobs into a store: sharding, resume, joblib, progress, summary.

Every pipeline turns its inputs into :class:`Item` s (one per recording, each with a
picklable ``task(**kwargs) -> Recording``) and calls :func:`run_items`. A failing item is
reported in the :class:`Summary` with its reason and the run goes on with the rest.
"""

from __future__ import annotations

import re
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from neuroconv.data.store import StoreWriter


class InputError(ValueError):
    """Bad input for one recording; the message names the file and says what to do."""

    def __init__(self, path, problem: str, fix: str = ""):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}" + (f" {fix}" if fix else ""))


class MissingTRError(InputError):
    """The repetition time of an fMRI recording is unknown."""


@dataclass
class Recording:
    """What a task returns: the array and what goes into the store about it."""

    data: np.ndarray                       # (n_times, n_channels) float
    channels: list[str]
    row: dict                              # manifest metadata (modality, sfreq, subject...)
    sources: list[str]                     # files read (checksummed in meta.json)
    events: pd.DataFrame | None = None     # onset, duration (samples), label, ...
    channel_units: list[str] | None = None
    details: dict = field(default_factory=dict)


@dataclass
class Item:
    id: str
    sources: list[str]
    task: Callable[..., Recording]
    kwargs: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.sources[0] if self.sources else ""


@dataclass
class Outcome:
    id: str
    source: str
    status: str                     # "done" | "skipped" | "failed"
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Summary:
    """Result of one pipeline run: ``done``, ``skipped`` and ``failed`` outcomes."""

    store: Path
    done: list[Outcome] = field(default_factory=list)
    skipped: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    shard: tuple[int, int] = (0, 1)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict:
        f = lambda outs: [o.__dict__ for o in outs]  # noqa: E731
        return {"store": str(self.store), "done": f(self.done), "skipped": f(self.skipped),
                "failed": f(self.failed), "shard": list(self.shard)}

    def __str__(self) -> str:
        lines = [f"store {self.store}: {len(self.done)} done, {len(self.skipped)} skipped, "
                 f"{len(self.failed)} failed"]
        for o in self.failed:
            lines.append(f"  FAILED {o.id}: {o.reason}")
        for o in self.done:
            for w in o.warnings:
                lines.append(f"  warning {o.id}: {w}")
        return "\n".join(lines)

    def print(self, console=None) -> None:
        """Print the closing summary as a rich table."""
        from rich.console import Console
        from rich.table import Table

        console = console or Console(stderr=True)
        table = Table(title=f"neuroconv preprocess -> {self.store}", show_lines=False)
        table.add_column("status")
        table.add_column("count", justify="right")
        table.add_row("[green]done", str(len(self.done)))
        table.add_row("[cyan]skipped (already done)", str(len(self.skipped)))
        table.add_row("[red]failed", str(len(self.failed)))
        console.print(table)
        if self.failed:
            ft = Table(title="failed", show_lines=True)
            ft.add_column("id")
            ft.add_column("reason", overflow="fold")
            for o in self.failed:
                ft.add_row(o.id, o.reason)
            console.print(ft)
        warned = [(o.id, w) for o in self.done for w in o.warnings]
        if warned:
            wt = Table(title="warnings", show_lines=True)
            wt.add_column("id")
            wt.add_column("warning", overflow="fold")
            for rid, w in warned[:50]:
                wt.add_row(rid, w)
            if len(warned) > 50:
                wt.add_row("...", f"{len(warned) - 50} more")
            console.print(wt)


def parse_shard(shard) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) or ``(i, n)`` -> ``(i, n)``."""
    if shard is None:
        return (0, 1)
    if isinstance(shard, str):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
        if not m:
            raise ValueError(f"shard must look like 'i/n' with 0 <= i < n (e.g. '0/4'), "
                             f"got {shard!r}")
        i, n = int(m.group(1)), int(m.group(2))
    else:
        i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard must satisfy 0 <= i < n (i is 0-based), got {i}/{n}")
    return i, n


def unique_ids(ids: list[str], sources: list[str]) -> list[str]:
    """Make ids unique and filesystem-safe; colliding ids get a short hash of the path."""
    import hashlib

    clean = [re.sub(r"[^A-Za-z0-9._-]+", "_", i).strip("._") or "rec" for i in ids]
    counts: dict[str, int] = {}
    for c in clean:
        counts[c] = counts.get(c, 0) + 1
    out = []
    for c, s in zip(clean, sources):
        if counts[c] > 1:
            c = f"{c}-{hashlib.sha1(str(Path(s).resolve()).encode()).hexdigest()[:8]}"
        out.append(c)
    return out


def _format_exc(e: BaseException) -> str:
    if isinstance(e, InputError):
        return str(e)
    msg = f"{type(e).__name__}: {e}"
    return msg if len(msg) < 2000 else msg[:2000] + " ..."


def _execute(item: Item, writer: StoreWriter) -> Outcome:
    t0 = time.perf_counter()
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = item.task(**item.kwargs)
        msgs = _dedupe([str(w.message) for w in caught
                        if not issubclass(w.category, (DeprecationWarning, FutureWarning))])
        writer.write(item.id, rec.data, rec.row, rec.channels, rec.sources, rec.events,
                     channel_units=rec.channel_units, details=rec.details, warnings_=msgs)
        return Outcome(item.id, item.source, "done", warnings=msgs,
                       seconds=time.perf_counter() - t0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - reported per item, the run goes on
        reason = _format_exc(e)
        if not isinstance(e, (InputError, OSError, ValueError)):
            tb = traceback.extract_tb(e.__traceback__)
            if tb:
                reason += f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})"
        return Outcome(item.id, item.source, "failed", reason=reason,
                       seconds=time.perf_counter() - t0)


def _dedupe(msgs: list[str]) -> list[str]:
    seen, out = set(), []
    for m in msgs:
        if m not in seen:
            seen.add(m)
            out.append(m)
    return out


def run_items(items: list[Item], writer: StoreWriter, *, jobs: int = 1, shard=None,
              progress: bool = True, description: str = "preprocess",
              extra_meta: dict | None = None,
              pre_failed: list[Outcome] | None = None) -> Summary:
    """Run ``items`` (sharded, resumable, in parallel) into ``writer``'s store."""
    i, n = parse_shard(shard)
    if not isinstance(jobs, (int, np.integer)) or jobs == 0 or jobs < -1:
        raise ValueError(f"jobs must be a positive integer or -1 (all cores), got {jobs!r}")
    items = sorted(items, key=lambda it: it.id)[i::n]
    summary = Summary(store=writer.path, shard=(i, n))
    summary.failed.extend(o for k, o in enumerate(pre_failed or []) if k % n == i)
    todo = []
    for it in items:
        if writer.is_done(it.id, it.sources):
            summary.skipped.append(Outcome(it.id, it.source, "skipped", "already done"))
        else:
            todo.append(it)

    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(),
                    disable=not progress, transient=False)
    with prog:
        task = prog.add_task(description, total=len(todo))
        if jobs == 1 or len(todo) <= 1:
            outcomes = (_execute(it, writer) for it in todo)
        else:
            from joblib import Parallel, delayed

            outcomes = Parallel(n_jobs=jobs, return_as="generator_unordered")(
                delayed(_execute)(it, writer) for it in todo)
        for out in outcomes:
            (summary.done if out.status == "done" else summary.failed).append(out)
            prog.advance(task)
    writer.finalize(extra_meta)
    summary.done.sort(key=lambda o: o.id)
    summary.failed.sort(key=lambda o: o.id)
    return summary

