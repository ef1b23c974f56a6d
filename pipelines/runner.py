"""Run per-recording jobs into a store: sharding, resume, joblib or Dask, progress, summary.

Every pipeline turns its inputs into :class:`Item` s (one per recording, each with a
picklable ``task(**kwargs) -> Recording``) and calls :func:`run_items`. A failing item is
reported in the :class:`Summary` with its reason and the run goes on with the rest.

Where the recordings run: in this process (``jobs=1``), in ``jobs`` joblib processes, or,
inside a :func:`use_dask` block, on the workers of a ``dask.distributed`` cluster. Each
worker writes the recordings it ran straight into the store (atomically; a recording is
done once its ``records/<id>.json`` exists), so the three give the same store, and a
killed run of any kind resumes from the records of the others.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import os
import re
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

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


class RunWarning(UserWarning):
    """A warning about the settings of a run rather than about one recording (for
    example about a default that the pipeline chose itself).

    A recording's task raises it like any warning, with a message that names no file; the
    run reports each such message once (:attr:`Summary.run_warnings`, with the number of
    recordings it concerns) instead of once per recording.
    """


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
    run_warnings: list[str] = field(default_factory=list)   # RunWarning messages


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
    def run_warnings(self) -> list[str]:
        """Each :class:`RunWarning` of the done recordings once, with how many recordings
        it concerns: ``"<message> (3 of 5 recordings)"``."""
        return _run_warning_lines(self.done)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict:
        f = lambda outs: [o.__dict__ for o in outs]  # noqa: E731
        return {"store": str(self.store), "done": f(self.done), "skipped": f(self.skipped),
                "failed": f(self.failed), "shard": list(self.shard),
                "run_warnings": self.run_warnings}

    def __str__(self) -> str:
        lines = [f"store {self.store}: {len(self.done)} done, {len(self.skipped)} skipped, "
                 f"{len(self.failed)} failed"]
        for o in self.failed:
            lines.append(f"  FAILED {o.id}: {o.reason}")
        for o in self.done:
            for w in o.warnings:
                lines.append(f"  warning {o.id}: {w}")
        for w in self.run_warnings:
            lines.append(f"  warning: {w}")
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
        warned = [("run", w) for w in self.run_warnings]
        warned += [(o.id, w) for o in self.done for w in o.warnings]
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
        kept = [w for w in caught
                if not issubclass(w.category, (DeprecationWarning, FutureWarning))]
        msgs = _dedupe([str(w.message) for w in kept if not issubclass(w.category, RunWarning)])
        run_msgs = _dedupe([str(w.message) for w in kept if issubclass(w.category, RunWarning)])
        writer.write(item.id, rec.data, rec.row, rec.channels, rec.sources, rec.events,
                     channel_units=rec.channel_units, details=rec.details, warnings_=msgs)
        return Outcome(item.id, item.source, "done", warnings=msgs,
                       seconds=time.perf_counter() - t0, run_warnings=run_msgs)
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


def _run_warning_lines(done: list[Outcome]) -> list[str]:
    counts: dict[str, int] = {}
    for o in done:
        for w in o.run_warnings:
            counts[w] = counts.get(w, 0) + 1
    return [f"{w} ({k} of {len(done)} recording{'s' if len(done) > 1 else ''})"
            for w, k in counts.items()]


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
    """Run ``items`` (sharded, resumable, in parallel) into ``writer``'s store.

    Inside a :func:`use_dask` block the items run on that Dask cluster's workers and
    ``jobs`` is not used; otherwise on ``jobs`` joblib processes (1: in this process).
    Each :class:`RunWarning` that the recordings raised is warned once here (and listed
    in :attr:`Summary.run_warnings`), however many recordings raised it.
    """
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
    client = _DASK_CLIENT.get()
    with prog:
        task = prog.add_task(description, total=len(todo))
        if client is not None and todo:
            outcomes = _dask_outcomes(client, todo, writer)
        elif jobs == 1 or len(todo) <= 1:
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
    for line in summary.run_warnings:
        warnings.warn(line, RunWarning, stacklevel=3)
    return summary



# --------------------------------------------------------------------------- Dask
_DASK_CLIENT: contextvars.ContextVar = contextvars.ContextVar("neuroconv_pipelines_dask",
                                                              default=None)
DASK_INSTALL = "pip install 'neuroconv[dask]' (or pip install 'dask[distributed]')"


@contextlib.contextmanager
def use_dask(cluster="local", *, n_workers: int | None = None):
    """Run the recordings of every ``preprocess_*`` call in the block on a Dask cluster.

    ``cluster``:

    - ``"local"``: a ``distributed.LocalCluster`` for the block, of ``n_workers``
      processes (default one per core) with one thread each;
    - a scheduler address (``"tcp://10.0.0.5:8786"``), for example that of a
      ``dask_jobqueue.SLURMCluster``, whose workers must see the inputs and the store at
      the same paths as this process (a shared filesystem);
    - a ``distributed.Client``, or a cluster object (``SLURMCluster``, ``LocalCluster``).

    Each recording is one task (``client.map``); results arrive through
    ``distributed.as_completed``. A worker that dies while running a recording is
    replaced, and the recording runs again elsewhere, up to the scheduler's
    ``distributed.scheduler.allowed-failures`` (default 3); then that recording is
    reported failed and the others go on. Workers with one thread each keep each
    recording's warnings apart. Yields the ``distributed.Client``.

    Example::

        with use_dask("tcp://10.0.0.5:8786"):
            preprocess_eegbci("/shared/data", "/shared/stores/eegbci", subjects="1-109")
    """
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise ImportError(f"running on a Dask cluster needs dask.distributed, which is not "
                          f"installed: {DASK_INSTALL}") from e
    if n_workers is not None and not (isinstance(n_workers, (int, np.integer)) and
                                      n_workers >= 1):
        raise ValueError(f"n_workers must be a positive integer or None (one per core), "
                         f"got {n_workers!r}")
    with contextlib.ExitStack() as stack:
        if isinstance(cluster, str) and cluster == "local":
            # recordings are long tasks: hand each worker thread one at a time, so that a
            # worker's death counts against the recording it was running and no other
            with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
                lc = stack.enter_context(LocalCluster(
                    n_workers=n_workers, threads_per_worker=1, processes=True,
                    dashboard_address="127.0.0.1:0"))
            client = stack.enter_context(Client(lc, set_as_default=False))
        elif isinstance(cluster, Client):
            client = cluster
        elif isinstance(cluster, str) or hasattr(cluster, "scheduler_address"):
            try:
                client = stack.enter_context(Client(cluster, set_as_default=False))
            except OSError as e:
                raise ValueError(f"dask={cluster!r}: cannot reach a Dask scheduler there "
                                 f"({e}). Pass the address of a running scheduler (for "
                                 "example dask_jobqueue's SLURMCluster().scheduler_address, "
                                 "tcp://host:port), or 'local'.") from e
        else:
            raise ValueError(f"dask must be 'local', a scheduler address "
                             f"('tcp://host:8786'), a distributed.Client or a cluster object, "
                             f"got {cluster!r}")
        token = _DASK_CLIENT.set(client)
        try:
            yield client
        finally:
            _DASK_CLIENT.reset(token)


def _check_workers(client, store: Path, todo: list[Item]) -> None:
    """Refuse a run whose workers cannot see the inputs or the store as this process does."""
    here = os.getcwd()
    cwds = client.run(os.getcwd)                          # {worker address: folder}
    relative = sorted({s for it in todo for s in it.sources if not os.path.isabs(s)})
    away = sorted({c for c in cwds.values() if c != here})
    if relative and away:
        raise ValueError(f"the Dask workers run in {away[:3]}, not in {here}, so the relative "
                         f"input paths {relative[:3]} would name other files there: give "
                         "absolute paths (or an absolute --data-dir).")
    seen = client.run(os.path.isdir, str(store / "records"))
    blind = sorted(w for w, ok in seen.items() if not ok)
    if blind:
        raise ValueError(f"the store {store} is not visible to Dask worker(s) {blind[:3]}: "
                         "the store (--out) must be on a filesystem that this process and "
                         "every worker share, at the same path (a cluster's shared home or "
                         "scratch space, not a node's local /tmp).")
    threads = {w: info.get("nthreads", 1)
               for w, info in client.scheduler_info().get("workers", {}).items()}
    if any(t > 1 for t in threads.values()):
        warnings.warn(f"Dask workers with several threads ({max(threads.values())}) run "
                      "several recordings in one process at once, and the warnings each "
                      "recording records may mix; start workers with one thread each "
                      "(dask worker --nthreads 1; dask_jobqueue: processes=cores).")


def _dask_outcomes(client, todo: list[Item], writer: StoreWriter) -> Iterator[Outcome]:
    """Run ``todo`` on the cluster of ``client``; yields each outcome as it arrives."""
    from distributed import as_completed

    shared = copy.copy(writer)                  # workers may start in another folder
    shared.path = writer.path.resolve()
    _check_workers(client, shared.path, todo)
    run = uuid.uuid4().hex[:8]
    futures = client.map(_execute, todo, writer=shared, retries=0,
                         key=[f"neuroconv-preprocess-{it.id}-{run}" for it in todo])
    by_key = {f.key: it for f, it in zip(futures, todo)}
    try:
        for fut in as_completed(futures, loop=client.loop):
            it = by_key[fut.key]
            try:
                out = fut.result()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001 - the task is lost, not the run
                out = Outcome(it.id, it.source, "failed", reason=_lost_reason(e))
            fut.release()
            yield out
    finally:                                    # stopped early: drop what is left
        with contextlib.suppress(Exception):    # (a lost scheduler has dropped it already)
            client.cancel([f for f in futures if not f.done()])


def _lost_reason(e: BaseException) -> str:
    """Why a recording came back from Dask without an outcome (its task itself reports
    every error of the recording; these are the cluster's)."""
    if type(e).__name__ == "KilledWorker":
        n = getattr(e, "allowed_failures", None)
        tries = f"{n + 1} times" if isinstance(n, int) else "repeatedly"
        return (f"the Dask workers running it died {tries} (killed, out of memory, or a "
                "crash in compiled code), so Dask gave up on it (distributed.scheduler."
                "allowed-failures). Rerun to try again (done recordings are skipped), or run "
                "it alone with --jobs 1 to see its error.")
    if isinstance(e, (ModuleNotFoundError, ImportError)):
        return (f"a Dask worker cannot run it ({type(e).__name__}: {e}): install neuroconv "
                "(the same version) in the workers' environment.")
    return f"lost on the Dask cluster ({_format_exc(e)}); rerun to try again."
