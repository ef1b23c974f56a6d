"""Validate the FlashButterfly kernels on this machine: one command runs every check.

    python -m neuroconv.kernel_tools.check --json report.json [--quick] [--markdown report.md]

On a CUDA GPU it checks everything in full; without one it runs the same checks under the
Triton interpreter (``TRITON_INTERPRET=1`` is set when CUDA is absent) on small shapes,
as CI does, and records the GPU-only ones as skipped. It prints a line per check as it
goes, then a summary; ``--json`` gets every record (rewritten after each section, so an
interrupted run keeps what it measured); ``--markdown`` gets the tables. Exit status 1
when any check failed, 0 otherwise.

Sections, in order:

``environment``
    Device name, compute capability, SMs, memory, shared memory per block (what Triton
    may use), torch, triton and CUDA versions, how the ops register, dot precisions.
``precompile`` (GPU)
    Every kernel configuration the rest of the run launches, compiled in parallel
    processes first (:mod:`.precompile`); a configuration that does not compile fails.
``auto``
    ``backend="auto"``'s self-check (:mod:`neuroconv.kernels.selfcheck`) for each dtype,
    causal or centred, gated or not, and the learned butterfly's; a launch on the second
    GPU when there is one.
``correctness``
    FlashButterfly forward and every gradient against float64 under the error budget of
    :mod:`neuroconv.kernels.verify` (kernel error <= 2 x torch's own error in that dtype
    + atol): L = 1, odd, prime, block edges, every FFT size class on chip and three-pass;
    causal and centred, gated and ungated; float32 with ``tf32x3``, ``ieee`` and ``tf32`` dots
    (``tf32`` held to the float16 budget), bfloat16, float16; the learned butterfly.
``determinism``
    The backward run twice, every gradient compared bit for bit. FlashButterfly uses no
    atomics (partial sums are reduced by torch): any difference fails. The learned
    butterfly accumulates ``dk``, ``dD`` and the factor gradients with ``atomic_add``, so
    their last bits may differ on a GPU: reported as ``warn`` with the size, and a failure
    only above 1e-4 of the gradient's largest magnitude (reordering noise is ~1e-6 in
    float32); ``du`` must match exactly.
``offsets``
    64-bit index arithmetic past 2^31 elements: the interpreter dry run of every
    launcher (:mod:`.offsets`) and, on a GPU with the memory, real B·H·L > 2^31 runs
    (bfloat16: on chip, three-pass, learned butterfly) checked on their last rows.
``timing`` (GPU)
    :func:`neuroconv.kernel_tools.bench.run_grid` at B = 64, H = 768, L = 256 ... 64K, bf16
    and fp32, forward and forward+backward (and gated bf16): median ms from CUDA events,
    speedup over the torch path in the same run, HBM roofline fraction with its byte
    formula, peak memory against the torch path, FlashFFTConv when importable.
``torch_compile``
    ``opcheck`` of the four ops; the kernels (``triton_op``) or the ops (``custom_op``)
    visible in the AOT graphs; ``torch.compile(fullgraph=True)`` of a ``LongConv`` layer
    and a ``SequenceModel``, forward and backward, against eager (inductor on a GPU,
    aot_eager under the interpreter).
``compile``
    Every kernel compiled offline for this device's architecture (sm_90 without a GPU),
    shared memory, registers and spills per configuration (compiled in the
    background meanwhile, on the CPUs the GPU sections leave idle) beside
    :data:`neuroconv.kernel_tools.resources.OFFLINE_SM90`; on a GPU also the kernels that ran.

``--quick`` keeps every section but fewer cases and lengths: sized for about 5 minutes
on an H100/H200 (not yet run on one: the time budget enforces it) and under a minute
under the interpreter. ``--time-budget`` (seconds; default 330 with ``--quick`` on a
GPU) skips, and records as skipped, what would run past it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Optional

STATUSES = ("pass", "fail", "warn", "skip", "info")
SECTIONS = ("environment", "precompile", "auto", "correctness", "determinism", "offsets", "timing",
            "torch_compile", "compile")
REPORT_COMMAND = "python -m neuroconv.kernel_tools.check --json report.json"


# ============================================================================ the report


class Report:
    """Records of one run; prints each as it comes and rewrites the JSON after each section."""

    def __init__(self, argv: list[str], quick: bool, json_path: Optional[str], md_path: Optional[str],
                 time_budget: Optional[float], stream=None):
        self.argv, self.quick = argv, quick
        self.json_path, self.md_path = json_path, md_path
        self.t0 = time.time()
        self.deadline = self.t0 + time_budget if time_budget else None
        self.records: list[dict] = []
        self.sections: dict[str, dict] = {}
        self.env: dict = {}
        self.timing_rows: list[dict] = []
        self.stream = stream or sys.stdout

    def time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.time()

    def out_of_time(self) -> bool:
        return self.time_left() <= 0

    def add(self, section: str, name: str, status: str, detail: str = "", **data) -> dict:
        assert status in STATUSES, status
        rec = dict(section=section, name=name, status=status, detail=detail, **data)
        self.records.append(rec)
        print(f"{status.upper():5s} {section:13s} {name}" + (f": {detail}" if detail else ""),
              file=self.stream, flush=True)
        return rec

    def run_section(self, name: str, fn: Callable[["Report"], None]) -> None:
        t0 = time.time()
        n0 = len(self.records)
        try:
            if self.out_of_time() and name not in ("environment", "compile"):  # compile: 30 s at most
                self.add(name, "section", "skip", "time budget spent before this section")
            else:
                fn(self)
        except Exception as e:  # noqa: BLE001 - a crashed section fails; the others still run
            tb = traceback.format_exc().strip().splitlines()
            self.add(name, "section crashed", "fail", f"{type(e).__name__}: {str(e)[:300]}",
                     traceback=tb[-12:])
        recs = self.records[n0:]
        status = ("fail" if any(r["status"] == "fail" for r in recs) else
                  "warn" if any(r["status"] == "warn" for r in recs) else
                  "pass" if any(r["status"] == "pass" for r in recs) else
                  "skip" if recs and all(r["status"] == "skip" for r in recs) else "info")
        self.sections[name] = dict(status=status, seconds=round(time.time() - t0, 1),
                                   counts={s: sum(r["status"] == s for r in recs) for s in STATUSES})
        self.write()

    @property
    def failed(self) -> bool:
        return any(r["status"] == "fail" for r in self.records)

    def summary(self) -> dict:
        return {s: sum(r["status"] == s for r in self.records) for s in STATUSES}

    def as_json(self) -> dict:
        import resource

        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return dict(schema=1, command="python -m neuroconv.kernel_tools.check " + " ".join(self.argv),
                    date=time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.t0)),
                    quick=self.quick, seconds=round(time.time() - self.t0, 1),
                    cpu_seconds=dict(this_process=round(own.ru_utime + own.ru_stime, 1),
                                     subprocesses=round(kids.ru_utime + kids.ru_stime, 1)),
                    ok=not self.failed,
                    summary=self.summary(), environment=self.env, sections=self.sections,
                    records=self.records, timing=self.timing_rows)

    def write(self) -> None:
        if self.json_path:
            tmp = self.json_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.as_json(), f, indent=1, default=str)
            os.replace(tmp, self.json_path)
        if self.md_path:
            with open(self.md_path, "w") as f:
                f.write(markdown(self.as_json()))


def _cell(text) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def markdown(rep: dict) -> str:
    """The report's tables (environment, a summary per section, each section's records,
    the timing grid)."""
    env = rep["environment"]
    out = [f"# FlashButterfly validation report\n",
           f"Command: `{rep['command']}`  ",
           f"Date: {rep['date']}  ",
           f"Device: {env.get('device', '?')}  ",
           f"Result: {'PASS' if rep['ok'] else 'FAIL'} "
           + ", ".join(f"{v} {k}" for k, v in rep["summary"].items() if v) + f" ({rep['seconds']} s)\n",
           "## Environment\n", "| key | value |", "|---|---|"]
    out += [f"| {k} | {_cell(v)} |" for k, v in env.items()]
    out += ["\n## Sections\n", "| section | status | pass | fail | warn | skip | info | seconds |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in rep["sections"].items():
        c = s["counts"]
        out.append(f"| {name} | {s['status']} | {c['pass']} | {c['fail']} | {c['warn']} | {c['skip']} | "
                   f"{c['info']} | {s['seconds']} |")
    for name in rep["sections"]:
        recs = [r for r in rep["records"] if r["section"] == name]
        if not recs or name == "timing":
            continue
        out += [f"\n## {name}\n", "| check | status | detail |", "|---|---|---|"]
        out += [f"| {_cell(r['name'])} | {r['status']} | {_cell(r['detail'])} |" for r in recs]
    if rep["timing"]:
        from .bench import markdown as bench_md

        out += ["\n## timing\n", bench_md(rep["timing"], rep["command"])]
    return "\n".join(out) + "\n"


# ============================================================================ the plan


@dataclass(frozen=True)
class Case:
    """One correctness case (``kind``: ``"fftconv"`` or ``"butterfly"``)."""

    L: int
    causal: bool
    gated: bool = False
    dtype: str = "float32"
    prec: Optional[str] = None  # float32 dot precision; None: the default (tf32x3)
    B: int = 2
    H: int = 3
    Lk: Optional[int] = None  # None: L (causal) or 2L - 1 (centred)
    max_onchip: Optional[int] = None
    kind: str = "fftconv"
    with_D: bool = True
    k_dtype: Optional[str] = None

    @property
    def lk(self) -> int:
        """Kernel taps: ``Lk``, or ``L`` (causal) / ``2L - 1`` (centred); odd when centred."""
        lk = self.Lk or (self.L if self.causal else 2 * self.L - 1)
        return lk if self.causal or lk % 2 else lk + 1

    @property
    def name(self) -> str:
        what = "learned butterfly" if self.kind == "butterfly" else "flashbutterfly"
        extra = [f"max_onchip={self.max_onchip}"] if self.max_onchip else []
        extra += [f"k {self.k_dtype}"] if self.k_dtype else []
        extra += [] if self.with_D else ["no D"]
        return (f"{what} L={self.L} Lk={self.lk} {'causal' if self.causal else 'centred'} "
                f"{'gated' if self.gated else 'ungated'} {self.dtype}"
                + (f"/{self.prec}" if self.prec else "") + f" B={self.B} H={self.H}"
                + (" " + " ".join(extra) if extra else ""))


def _edges(*ns):
    return [x for n in ns for x in (n - 1, n, n + 1)]


def correctness_cases(gpu: bool, quick: bool) -> list[Case]:
    """Every dimension of the issue (lengths, causal/centred, gated, dtypes and dot
    precisions, three-pass, learned butterfly) covered, each value at least once; the
    GPU run in full crosses more of them. Under the interpreter the three-pass path is
    forced at small sizes with ``max_onchip=512``."""
    C = Case
    if not gpu:  # B = H = 2: the fewest programs that still cover the batch and channel loops
        small = dict(B=2, H=2)
        cases = [C(1, True, **small), C(17, False, True, **small),  # L = 1; a prime, past the 16 edge
                 C(255, True, True, **small), C(257, False, **small),  # either side of N = 512 | 1024
                 C(300, True, True, max_onchip=512, **small),  # three-pass, forced small
                 C(257, False, max_onchip=512, Lk=101, **small),
                 C(33, True, True, prec="ieee", **small), C(33, False, True, prec="tf32", **small),
                 C(100, True, True, "bfloat16", **small), C(61, False, False, "float16", B=1, H=2),
                 C(16, True, kind="butterfly", **small), C(100, False, dtype="bfloat16", kind="butterfly", **small)]
        if not quick:
            cases += [C(L, L % 2 == 0, L % 3 == 0) for L in [2, 3, 7, 15, 16, 31, 97, 127, 256, 511, 512, 513,
                                                               1000]]
            cases += [C(50, False, True, "bfloat16", k_dtype="float32")]
            cases += [C(1000, True, True, max_onchip=512), C(3001, False, False, max_onchip=1024, B=1, H=2),
                      C(4000, False, False, B=1, H=2), C(100, True, False, "float64"),
                      C(77, False, True, "float16"), C(1, False, True, "bfloat16"),
                      C(1000, True, kind="butterfly", H=2), C(255, False, kind="butterfly", dtype="float16", H=2)]
        return cases
    # GPU: every FFT size class N = 512 ... 131072 (L up to 64K), on chip and three-pass
    if quick:
        cases = [C(1, True), C(2, False, True), C(17, True, True), C(97, False), C(256, True, True),
                 C(257, False), C(1023, True, True), C(4096, False), C(4097, True, True),
                 C(8193, False), C(16385, True, True, B=1, H=4), C(65536, False, B=1, H=2),
                 C(15, True, True, "bfloat16"), C(255, False, False, "bfloat16"),
                 C(2049, True, True, "bfloat16"), C(8192, False, True, "bfloat16"),
                 C(8193, True, False, "bfloat16"), C(65536, True, True, "bfloat16", B=1, H=2),
                 C(16, False, True, "float16"), C(4095, True, False, "float16"),
                 C(16385, False, True, "float16", B=1, H=2),
                 C(100, True, True, prec="ieee"), C(4096, False, True, prec="ieee"),
                 C(100, False, True, prec="tf32"), C(4096, True, True, prec="tf32"),
                 C(1000, False, True, "bfloat16", k_dtype="float32"),
                 # learned butterfly at small tiles: its backward at 64 x 64 tiles takes
                 # minutes to compile (resources.OFFLINE_SM90), too long for --quick
                 C(100, True, kind="butterfly"), C(200, False, dtype="bfloat16", kind="butterfly")]
        return cases
    lengths = sorted(set([1, 2, 3, 7, 15, 16, 17, 31, 97, 127] + _edges(256, 512, 1024, 2048, 4096, 8192,
                                                                         16384, 32768) + [65535, 65536]))
    cases = []
    for i, L in enumerate(lengths):
        bh = dict(B=1, H=2) if L > 8192 else {}
        cases.append(C(L, i % 2 == 0, i % 3 != 0, **bh))
        cases.append(C(L, i % 2 == 1, i % 3 == 0, "bfloat16", **bh))
        if i % 3 == 0:
            cases.append(C(L, i % 2 == 0, True, "float16", **bh))
    for prec in ("ieee", "tf32"):
        for L in (100, 1024, 4097, 16384):
            cases.append(C(L, L % 2 == 0, True, prec=prec, **(dict(B=1, H=2) if L > 8192 else {})))
    cases += [C(1000, False, True, "bfloat16", k_dtype="float32"), C(3000, False, True, "float64", B=2, H=3),
              C(1024, True, False, "bfloat16", B=64, H=8)]
    for L, dt in ((1, "float32"), (100, "float32"), (1000, "bfloat16"), (2048, "float32"), (4000, "bfloat16")):
        for causal in (True, False):
            cases.append(C(L, causal, dtype=dt, kind="butterfly", H=2))
    return cases


def _dt(name):
    import torch

    return getattr(torch, name)


def _device():
    import torch

    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


# ============================================================================ background jobs


@dataclass
class Background:
    """A subprocess started early and collected in a later section (the CPU works while
    the GPU or the interpreter does)."""

    args: list[str]
    env: dict
    json_path: str
    proc: Optional[subprocess.Popen] = None
    t0: float = 0.0
    log: str = ""
    result: object = None
    error: Optional[str] = None
    seconds: Optional[float] = None
    extra: dict = field(default_factory=dict)

    def start(self) -> "Background":
        self.t0 = time.time()
        self._out = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self._out, stderr=subprocess.STDOUT,
                                     text=True)
        return self

    def partial(self) -> list:
        """The records written so far (a JSON list rewritten as it goes), even when stopped."""
        if isinstance(self.result, list):
            return self.result
        try:
            with open(self.json_path) as f:
                data = json.load(f)
            return data if isinstance(data, list) else []
        except Exception:  # noqa: BLE001
            return []

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s; on success ``result`` holds the JSON it wrote."""
        if self.proc is None:
            return False
        try:
            self.proc.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.error = f"still running after {time.time() - self.t0:.0f} s; stopped"
        self.seconds = round(time.time() - self.t0, 1)
        self._out.seek(0)
        self.log = self._out.read()[-4000:]
        self._out.close()
        if self.error is None:
            try:
                with open(self.json_path) as f:
                    self.result = json.load(f)
            except Exception as e:  # noqa: BLE001
                self.error = f"exit status {self.proc.returncode}, no JSON ({_first_line(e)}): {self.log[-600:]}"
        return self.error is None


def _wait_s(rep: Report, cap: float) -> float:
    """How long a section may wait for a background job: the time left, at most ``cap``,
    at least 30 s."""
    return max(30.0, min(rep.time_left(), cap))


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(extra)
    return env


def _start_background(tmp: str, gpu: bool, quick: bool, arch: int) -> dict:
    jobs = max(1, min(16, (os.cpu_count() or 2) - (1 if gpu else 0)))
    py = sys.executable
    bg = {}
    res_args = [py, "-m", "neuroconv.kernel_tools.resources", "--arch", str(arch), "--json",
                os.path.join(tmp, "resources.json"), "--jobs", str(jobs if gpu else 1)]
    if not gpu:
        res_args += ["--small", "--no-usage", "--classes", "half", "float32"]
    elif not quick:
        res_args += ["--all"]
    from .resources import can_compile

    if can_compile():
        bg["resources"] = Background(res_args, _clean_env(), os.path.join(tmp, "resources.json"))
        if not gpu:  # on a GPU it starts after the precompile, which needs every core
            bg["resources"].start()
    if not gpu:  # the triton_op path, traced on the CPU without the interpreter
        bg["graphs"] = Background([py, "-m", "neuroconv.kernel_tools.check", "--_trace-triton-ops",
                                   os.path.join(tmp, "graphs.json")], _clean_env(),
                                  os.path.join(tmp, "graphs.json")).start()
    else:  # the offsets dry run needs the interpreter: a CPU process beside the GPU run
        bg["offsets"] = Background([py, "-m", "neuroconv.kernel_tools.offsets", "--json",
                                    os.path.join(tmp, "offsets.json")], _clean_env(TRITON_INTERPRET="1"),
                                   os.path.join(tmp, "offsets.json")).start()
    return bg


# ============================================================================ sections


def section_environment(rep: Report) -> None:
    import torch
    import triton

    import neuroconv
    from neuroconv.kernels.launches import settings

    dev = _device()
    env = dict(date=time.strftime("%Y-%m-%d"), host=platform.node(), platform=platform.platform(),
               python=platform.python_version(), torch=torch.__version__, triton=triton.__version__,
               cuda=torch.version.cuda, neuroconv=neuroconv.__version__, git=_git_commit(),
               backend="cuda" if dev.type == "cuda" else "Triton interpreter (CPU)",
               **settings(), cpu_count=os.cpu_count())
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        env.update(device=p.name, compute_capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count,
                   memory_gb=round(p.total_memory / 2**30, 1), gpus=torch.cuda.device_count(),
                   cudnn=torch.backends.cudnn.version())
        try:
            tp = triton.runtime.driver.active.utils.get_device_properties(dev.index or 0)
            env["max_shared_memory_per_block"] = int(tp["max_shared_mem"])
        except Exception:  # noqa: BLE001 - internal API; torch's (non-opt-in) figure instead
            env["max_shared_memory_per_block"] = int(p.shared_memory_per_block)
            env["max_shared_memory_note"] = "torch's shared_memory_per_block (not the opt-in maximum)"
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception:  # noqa: BLE001
            pass
    else:
        env.update(device=f"cpu ({platform.processor() or platform.machine()}), Triton interpreter, no GPU")
    rep.env = env
    detail = ", ".join(f"{k}={env[k]}" for k in ("device", "compute_capability", "max_shared_memory_per_block",
                                                  "torch", "triton", "cuda", "ops") if k in env)
    rep.add("environment", "versions and device", "info", detail)
    if dev.type == "cuda":
        from .resources import SMEM_LIMIT

        smem = env["max_shared_memory_per_block"]
        if smem < SMEM_LIMIT[90]:
            rep.add("environment", "shared memory", "warn",
                    f"{smem} B per block, below sm_90's {SMEM_LIMIT[90]} B that the on-chip limits "
                    "(MAX_ONCHIP, MAX_TILE) were sized for: the largest kernels may fail to launch here "
                    "(see the compile and correctness sections)")


def _git_commit() -> Optional[str]:
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        return subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------- workloads


@dataclass
class Plan:
    """What this run does: the cases of each section (shared by precompile and the runs)."""

    gpu: bool
    quick: bool
    cases: list
    auto: list
    auto_butterfly: list
    determinism: list
    big: list
    timing: dict
    layer: dict


def make_plan(gpu: bool, quick: bool) -> Plan:
    dtypes = ("float32", "bfloat16", "float16")
    if gpu:
        auto = [(dt, c, g) for dt in dtypes for c in (True, False) for g in (False, True)]
    else:
        auto = [("bfloat16", False, True)] if quick else [("float32", True, False), ("bfloat16", False, True)]
    # the learned butterfly's self-check (ButterflyFFTConv(backend="auto")): (dtype, causal)
    auto_butterfly = ([(dt, c) for dt in ("float32", "bfloat16") for c in (True, False)] if gpu else
                      [("float32", True)])
    det = ([Case(1000, False, True, B=4, H=8), Case(20000, True, True, "bfloat16", B=2, H=4),
            Case(100 if quick else 1000, True, kind="butterfly", B=4, H=8)] if gpu else
           [Case(40, False, True, B=2, H=2), Case(300, True, True, B=2, H=2, max_onchip=512),
            Case(20, True, kind="butterfly", B=2, H=2)])
    # B·H·L just above 2^31, bfloat16: on chip, three-pass, learned butterfly
    big = [dict(name="on chip", kind="fftconv", L=4096, H=4), dict(name="three-pass", kind="fftconv", L=65536, H=4),
           dict(name="learned butterfly", kind="butterfly", L=256 if quick else 2048, H=4)]
    for b in big:
        b["B"] = (1 << 31) // (b["H"] * b["L"]) + 1
    from .bench import FULL, QUICK

    timing = dict(lengths=QUICK["lengths"] if quick else FULL["lengths"], B=64, H=768,
                  dtypes=("bfloat16", "float32"), gated_dtypes=("bfloat16",), rep_ms=25 if quick else 100)
    layer = dict(d_model=16 if gpu else 8, L=256 if gpu else 24, n_layers=2 if gpu else 1)
    return Plan(gpu, quick, correctness_cases(gpu, quick), auto, auto_butterfly, det, big, timing, layer)


def _meta_workloads(plan: Plan) -> list[Callable[[], object]]:
    """The launches of the whole run, as callables over meta tensors (for precompile)."""
    import torch

    from neuroconv.kernels.launches import butterfly_launches, dot_precisions
    from neuroconv.kernels.selfcheck import BUTTERFLY_SHAPES, SHAPES

    from .precompile import meta_butterfly, meta_fftconv

    out = []

    def case(c: Case):
        def run():
            with dot_precisions(fp32=c.prec):
                if c.kind == "butterfly":
                    meta_butterfly(c.B, c.H, c.L, c.causal, with_D=c.with_D, dtype=_dt(c.dtype))
                else:
                    meta_fftconv(c.B, c.H, c.L, c.causal, gated=c.gated, with_D=c.with_D, dtype=_dt(c.dtype),
                                 Lk=c.lk, max_onchip=c.max_onchip,
                                 k_dtype=_dt(c.k_dtype) if c.k_dtype else None)
        return run

    out += [case(c) for c in plan.cases + plan.determinism]
    for dt, causal, gated in plan.auto:
        for B, H, L, mo in SHAPES:
            out.append(case(Case(L, causal, gated, dt, B=B, H=H, Lk=L, max_onchip=mo)))
    for dt, causal in plan.auto_butterfly:
        for B, H, L, n1, n2 in BUTTERFLY_SHAPES:
            out.append(lambda a=(B, H, L, n1, n2, causal), dt=dt: butterfly_launches(*a, dtype=_dt(dt)))
    for b in plan.big:
        if b["kind"] == "butterfly":
            out.append(lambda b=b: meta_butterfly(b["B"], b["H"], b["L"], True, dtype=torch.bfloat16))
        else:
            out.append(lambda b=b: meta_fftconv(b["B"], b["H"], b["L"], True, dtype=torch.bfloat16))
    t = plan.timing
    for dt in t["dtypes"]:
        for L in t["lengths"]:
            out.append(lambda L=L, dt=dt: meta_fftconv(t["B"], t["H"], L, True, dtype=_dt(dt)))
    for dt in t["gated_dtypes"]:
        for L in t["lengths"]:
            out.append(lambda L=L, dt=dt: meta_fftconv(t["B"], t["H"], L, True, gated=True, dtype=_dt(dt)))
    return out


def section_precompile(rep: Report, plan: Plan, bg: dict, device_programs: Optional[int] = None,
                       worker=None, jobs: Optional[int] = None) -> None:
    """GPU: compile every launch of the run first, in parallel; then start the offline
    compile of the ``compile`` section in the background (it needs the CPUs too)."""
    if not plan.gpu:
        rep.add("precompile", "parallel precompile", "skip", "GPU only: the interpreter compiles nothing")
        return
    from .precompile import collect, compile_all, warm_one

    t0 = time.time()
    if device_programs is None:
        import torch

        device_programs = 4 * torch.cuda.get_device_properties(0).multi_processor_count
    specs, launches = collect(_meta_workloads(plan), device_programs=device_programs)
    jobs = jobs or max(1, min(32, (os.cpu_count() or 2) - 1))
    budget = max(30.0, min(rep.time_left() - 150, 240 if plan.quick else 1800))
    try:
        recs = compile_all(specs, jobs=jobs, timeout_s=budget, worker=worker or warm_one)
    finally:
        job = bg.get("resources")
        if job is not None and job.proc is None:
            job.start()
    bad = [r for r in recs if not r["ok"] and not str(r.get("error", "")).startswith("not compiled within")]
    late = [r for r in recs if not r["ok"] and r not in bad]
    rep.add("precompile", "every configuration compiles", "fail" if bad else "pass",
            f"{len(specs)} distinct kernel configurations ({launches} launches) compiled in {jobs} processes "
            f"in {time.time() - t0:.0f} s; {len(bad)} failed, {len(late)} left to compile at launch",
            kernels=len(specs), launches=launches, jobs=jobs, slowest=sorted(
                [r for r in recs if r.get("seconds")], key=lambda r: -r["seconds"])[:5])
    for r in bad:
        rep.add("precompile", f"{r['name']} {r.get('kwargs', '')}", "fail", r["error"])


def section_auto(rep: Report, plan: Plan) -> None:
    import torch

    from neuroconv.backend import resolve_backend
    from neuroconv.kernels import self_check

    dev = _device()
    for dt, causal, gated in plan.auto:
        if rep.out_of_time():
            rep.add("auto", f"self-check {dt}", "skip", "time budget")
            continue
        r = self_check(dev, _dt(dt), causal, gated)
        rep.add("auto", f"self-check {dt} {'causal' if causal else 'centred'} {'gated' if gated else 'ungated'}",
                "pass" if r.ok else "fail", f"{r.seconds:.1f} s" if r.ok else r.failed, result=r.as_dict())
    for dt, causal in plan.auto_butterfly:
        name = f"self-check learned butterfly {dt} {'causal' if causal else 'centred'}"
        if rep.out_of_time():
            rep.add("auto", name, "skip", "time budget")
            continue
        r = self_check(dev, _dt(dt), causal, False, op="butterfly")
        rep.add("auto", name, "pass" if r.ok else "fail", f"{r.seconds:.1f} s" if r.ok else r.failed,
                result=r.as_dict())
    if plan.gpu:
        u = torch.randn(1, 2, 64, device=dev)
        got = resolve_backend("auto", u)
        rep.add("auto", "backend='auto' on a CUDA float32 tensor", "pass" if got == "triton" else "fail",
                f"chose {got}")
        if torch.cuda.device_count() > 1:
            try:
                from neuroconv.kernels.verify import compare_fftconv, failures

                with torch.cuda.device(0):
                    bad = failures(compare_fftconv(2, 3, 300, 300, False, device=torch.device("cuda", 1)))
                rep.add("auto", "launch on cuda:1 while cuda:0 is current", "fail" if bad else "pass",
                        "; ".join(bad))
            except Exception as e:  # noqa: BLE001
                rep.add("auto", "launch on cuda:1 while cuda:0 is current", "fail", _first_line(e))
        else:
            rep.add("auto", "launch on a second GPU", "skip", "one GPU here")


def _summarise(recs: list[dict]) -> tuple[bool, str]:
    bad = [r for r in recs if not r["ok"]]
    if bad:
        return False, "; ".join(f"{r['name']}: {r['problem']}" for r in bad)
    worst = max(recs, key=lambda r: (r["err"] / r["budget"]) if r["budget"] else 0.0)
    names = ",".join(r["name"] for r in recs)
    return True, (f"{names} within budget; tightest {worst['name']}: {worst['err']:.2e} of "
                  f"{worst['budget']:.2e} (torch {worst['err_torch']:.2e})")


def run_case(c: Case, device) -> list[dict]:
    from neuroconv.kernels.launches import dot_precisions
    from neuroconv.kernels.verify import budget_dtype_for, compare_fftconv

    from .compare import compare_butterfly

    dtype = _dt(c.dtype)
    bdt = budget_dtype_for(dtype, c.prec)
    with dot_precisions(fp32=c.prec):
        if c.kind == "butterfly":
            return compare_butterfly(c.L, c.L, c.lk, c.causal, with_D=c.with_D, dtype=dtype, B=c.B, H=c.H,
                                     seed=c.L, device=device, budget_dtype=bdt)
        return compare_fftconv(c.B, c.H, c.L, c.lk, c.causal, gates=c.gated, with_D=c.with_D, dtype=dtype,
                               seed=c.L, max_onchip=c.max_onchip, device=device, budget_dtype=bdt,
                               k_dtype=_dt(c.k_dtype) if c.k_dtype else None)


def section_correctness(rep: Report, plan: Plan) -> None:
    dev = _device()
    for c in plan.cases:
        if rep.out_of_time():
            rep.add("correctness", c.name, "skip", "time budget")
            continue
        t0 = time.time()
        try:
            recs = run_case(c, dev)
            ok, detail = _summarise(recs)
            rep.add("correctness", c.name, "pass" if ok else "fail", detail, tensors=recs,
                    seconds=round(time.time() - t0, 2))
        except Exception as e:  # noqa: BLE001 - a launch or compile error fails this case only
            rep.add("correctness", c.name, "fail", _first_line(e), seconds=round(time.time() - t0, 2))


def _backward_twice(c: Case, device):
    """Gradients of two identical backward passes (same inputs, same dy)."""
    import torch

    from neuroconv.butterfly import ButterflyFFTConv

    from neuroconv.kernels.flashbutterfly import fftconv_fn
    from neuroconv.kernels.launches import dot_precisions

    g = torch.Generator().manual_seed(0)
    dt = _dt(c.dtype)
    mk = lambda *s: torch.randn(*s, generator=g).to(device, dt).requires_grad_()  # noqa: E731
    u, k, D = mk(c.B, c.H, c.L), mk(c.H, c.lk), mk(c.H)
    g1, g2 = (mk(c.B, c.H, c.L), mk(c.B, c.H, c.L)) if c.gated else (None, None)
    dy = torch.randn(c.B, c.H, c.L, generator=g).to(device, dt)
    if c.kind == "butterfly":
        m = ButterflyFFTConv(c.L, causal=c.causal, backend="triton").to(device)
        names = ["du", "dk", "dD", "df1", "dtw", "df2", "dg1", "dts", "dg2"]
        ins = [u, k, D] + [m.dft.f1, m.dft.twiddle, m.dft.f2, m.idft.f1, m.idft.twiddle, m.idft.f2]
        fn = lambda: m(u, k, D)  # noqa: E731
    else:
        names = ["du", "dk", "dD"] + (["dg1", "dg2"] if c.gated else [])
        ins = [u, k, D] + ([g1, g2] if c.gated else [])
        fn = lambda: fftconv_fn(u, k, D, causal=c.causal, g1=g1, g2=g2, max_onchip=c.max_onchip)  # noqa: E731
    runs = []
    with dot_precisions(fp32=c.prec):
        for _ in range(2):
            runs.append(torch.autograd.grad(fn(), ins, dy))
    return names, runs


def section_determinism(rep: Report, plan: Plan) -> None:
    import torch

    dev = _device()
    atomics = {"dk", "dD", "df1", "dtw", "df2", "dg1", "dts", "dg2"}  # learned butterfly, atomic_add
    for c in plan.determinism:
        try:
            names, (a, b) = _backward_twice(c, dev)
        except Exception as e:  # noqa: BLE001
            rep.add("determinism", c.name, "fail", _first_line(e))
            continue
        diffs = {}
        for n, x, y in zip(names, a, b):
            if not torch.equal(x, y):
                scale = max(float(x.abs().max()), 1e-30)
                diffs[n] = float((x.double() - y.double()).abs().max()) / scale
        if not diffs:
            rep.add("determinism", c.name, "pass", f"{', '.join(names)} bit-identical over two backward passes"
                    + (" (interpreter: programs run one after another)" if not plan.gpu else ""))
            continue
        if c.kind != "butterfly" or set(diffs) - atomics:
            rep.add("determinism", c.name, "fail",
                    "differ between two identical backward passes (no atomics expected): "
                    + ", ".join(f"{n} by {v:.1e} (relative)" for n, v in diffs.items()), diffs=diffs)
            continue
        worst = max(diffs.values())
        rep.add("determinism", c.name, "warn" if worst <= 1e-4 else "fail",
                "atomic_add accumulation in _monarch_bwd_kernel: last bits differ: "
                + ", ".join(f"{n} by {v:.1e}" for n, v in diffs.items()) + " (relative; du identical)",
                diffs=diffs)


def section_offsets(rep: Report, plan: Plan, bg: dict) -> None:
    # 1. the interpreter dry run
    if not plan.gpu and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        from .offsets import check_launchers

        recs = check_launchers()
    else:
        job = bg.get("offsets")
        ok = job is not None and job.wait(_wait_s(rep, 300))
        recs = job.result if ok else None
        if recs is None:
            rep.add("offsets", "interpreter dry run", "fail", job.error if job else "not started")
    for r in recs or []:
        big = sum(1 for launch in r["launches"] if launch["max_index"] >= 1 << 31)
        detail = (f"B·H·L = {r.get('elements', 0):.3e} ({r.get('plan', '?')}): {len(r['launches'])} launches "
                  f"dry-run, {big} addressed past element 2^31, all inside their tensors"
                  if r["ok"] else "; ".join(r["violations"][:5]) or r.get("error") or "no launch seen")
        rep.add("offsets", f"dry run: {r['name']}", "pass" if r["ok"] else "fail", detail)
    # 2. on a GPU: the real thing
    if not plan.gpu:
        rep.add("offsets", "B·H·L > 2^31 on the GPU", "skip", "GPU only")
        return
    import torch

    for b in plan.big:
        if rep.out_of_time():
            rep.add("offsets", f"B·H·L > 2^31 on the GPU: {b['name']}", "skip", "time budget")
            continue
        torch.cuda.empty_cache()
        _big_run(rep, b, torch.device("cuda"), torch.cuda.mem_get_info()[0])


def _big_run(rep: Report, b: dict, dev, free: int) -> None:
    """Run shape ``b`` (bfloat16, forward and backward) and check the last batch row's
    output and gradients (offsets past 2^31 elements) against references computed on that
    row alone; ``dy`` is zero elsewhere, so ``dk`` and ``dD`` come from it alone too."""
    import torch

    from neuroconv.butterfly import ButterflyFFTConv

    from neuroconv.kernels.flashbutterfly import fftconv_fn, gated_fftconv_ref
    from neuroconv.kernels.monarch import butterfly_conv_ref
    from neuroconv.kernels.verify import budget

    name = f"B·H·L > 2^31 on the GPU: {b['name']} (B={b['B']}, H={b['H']}, L={b['L']}, bf16)"
    B, H, L = b["B"], b["H"], b["L"]
    n = B * H * L
    need = 4 * n * 2 + (1 << 30)  # u, y, dy, du in bf16, plus scratch and references
    if free < 1.1 * need:
        rep.add("offsets", name, "skip", f"not enough memory: needs about {need / 2**30:.0f} GiB, "
                f"{free / 2**30:.0f} GiB free")
        return
    t0 = time.time()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    u = y = dy = du = None
    try:
        g = torch.Generator(device=dev).manual_seed(0)
        u = torch.empty(B, H, L, device=dev, dtype=torch.bfloat16).normal_(generator=g).requires_grad_()
        lk = L
        k = (torch.randn(H, lk, device=dev, generator=g) / lk**0.5).to(torch.bfloat16).requires_grad_()
        D = torch.randn(H, device=dev, generator=g).to(torch.bfloat16).requires_grad_()
        if b["kind"] == "butterfly":
            m = ButterflyFFTConv(L, backend="triton").to(dev)
            fn = lambda u_, k_, D_: m(u_, k_, D_)  # noqa: E731
            p64 = [p.detach().double() for p in (m.dft.f1, m.dft.twiddle, m.dft.f2, m.idft.f1, m.idft.twiddle,
                                                 m.idft.f2)]

            def ref(u_, k_, D_):  # the module's torch path; float64: the float64 Monarch reference
                if u_.dtype == torch.float64:
                    return butterfly_conv_ref(u_, k_, D_, p64[:3], p64[3:])
                m.backend = "torch"
                try:
                    return m(u_, k_, D_)
                finally:
                    m.backend = "triton"
        else:
            fn = lambda u_, k_, D_: fftconv_fn(u_, k_, D_)  # noqa: E731
            ref = lambda u_, k_, D_: gated_fftconv_ref(u_, k_, D_)  # noqa: E731
        y = fn(u, k, D)
        dy = torch.zeros_like(y)
        dy[-1].normal_(generator=g)  # only the last batch row: dk and dD come from it alone
        du, dk, dD = torch.autograd.grad(y, (u, k, D), dy)
        sync()
        # references on the last row (its offsets exceed 2^31 elements)
        last = [t.detach()[-1:].clone() for t in (u, y, dy, du)]
        ul, yl, dyl, dul = last
        del y, du
        checks = []
        for dt, tag in ((torch.bfloat16, "twin"), (torch.float64, "exact")):
            uu = ul.to(dt).requires_grad_()
            kk = k.detach().to(dt).requires_grad_()
            DD = D.detach().to(dt).requires_grad_()
            yy = ref(uu, kk, DD)
            checks.append([yy, *torch.autograd.grad(yy, (uu, kk, DD), dyl.to(dt))])
        twin, exact = checks
        results = {nm: budget(got, tw, ex, torch.bfloat16)
                   for nm, got, tw, ex in zip(("y", "du", "dk", "dD"), (yl, dul, dk, dD), twin, exact)}
        bad = [f"{nm}: {r['problem']}" for nm, r in results.items() if not r["ok"]]
        rep.add("offsets", name, "fail" if bad else "pass",
                "; ".join(bad) if bad else
                f"last row's y, du and dk, dD (from it alone) within budget, {n:.3e} elements, "
                f"{time.time() - t0:.1f} s", tensors=results)
    except torch.cuda.OutOfMemoryError:
        rep.add("offsets", name, "skip", "out of memory")
    except Exception as e:  # noqa: BLE001
        rep.add("offsets", name, "fail", _first_line(e))
    finally:
        u = y = dy = du = None
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def section_compile(rep: Report, plan: Plan, bg: dict, arch: int) -> None:
    from .resources import OFFLINE_SM90

    job = bg.get("resources")
    if job is None:
        rep.add("compile", f"offline compile for sm_{arch}", "skip",
                "triton's NVIDIA backend (ptxas) is not installed here")
        if plan.gpu:
            _ran(rep)
        return
    if job.proc is None:  # GPU: normally started after the precompile
        job.start()
    ok = job is not None and job.wait(_wait_s(rep, 900))
    if not ok:
        late = job is not None and "stopped" in (job.error or "")
        rep.add("compile", f"offline compile for sm_{arch}", "skip" if late else "fail",
                (job.error + "; the configurations done by then are listed") if late else
                (job.error if job else "not started"))
    for r in job.partial() if job is not None else []:
        then = OFFLINE_SM90.get(r["name"]) if arch == 90 else None
        was = f" (offline table: {then[0]} B, {then[1]} regs, {then[2]} B spilled)" if then else ""
        use = f", {r['regs']} regs, {r['spill_bytes']} B spilled" if r.get("regs") is not None else ""
        rep.add("compile", f"sm_{arch} {r['name']}", "pass" if r["ok"] else "fail",
                (f"{r['shared']} of {r['limit']} B shared{use}, {r['num_warps']} warps{was}" if r["ok"] else
                 r["error"] or f"{r['shared']} B shared > {r['limit']} B"), offline=r)
    if plan.gpu:
        _ran(rep)
    else:
        rep.add("compile", "kernels that ran on the device", "skip", "GPU only")


def _ran(rep: Report) -> None:
    from neuroconv.kernels.launches import compiled_kernels

    for k in compiled_kernels():
        rep.add("compile", f"ran: {k['kernel']} {k['config']}", "info",
                f"{k['shared']} B shared, {k['regs']} regs, {k['spills']} spills, {k['warps']} warps", kernel=k)


def section_torch_compile(rep: Report, plan: Plan, bg: dict) -> None:
    import torch

    from neuroconv.kernels.launches import OPS_KIND

    dev = _device()
    backend = "inductor" if plan.gpu else "aot_eager"
    # 1. opcheck of the four ops
    for name, args in _op_samples(dev):
        t0 = time.time()
        try:
            torch.library.opcheck(getattr(torch.ops.neuroconv, name).default, args)
            rep.add("torch_compile", f"opcheck neuroconv::{name}", "pass", f"registered as {OPS_KIND}; "
                    f"schema, autograd registration, fake tensor, AOT dispatch; {time.time() - t0:.0f} s")
        except Exception as e:  # noqa: BLE001
            rep.add("torch_compile", f"opcheck neuroconv::{name}", "fail", _first_line(e))
    # 2. what the compiler sees, on this device: a LongConv layer's AOT graphs
    try:
        seen = _aot_graph_targets(dev, plan.layer)
        want = "triton_kernel_wrapper" if OPS_KIND == "triton_op" else "neuroconv.flashbutterfly"
        ok = any(want in t for t in seen["forward"]) and any(want in t for t in seen["backward"])
        ok_vals = seen["err"] <= (1e-3 if plan.gpu else 1e-5)
        rep.add("torch_compile", f"LongConv fullgraph: {'kernels' if want.startswith('triton') else 'ops'} in "
                "the AOT graphs", "pass" if ok and ok_vals else "fail",
                f"{OPS_KIND}: forward {sorted(set(seen['forward']))}, backward "
                f"{sorted(set(seen['backward']))}; compiled (fullgraph, recording aot_autograd) vs eager "
                f"{seen['err']:.1e} over the output and every parameter gradient",
                targets={k: sorted(set(v)) for k, v in seen.items() if k != "err"})
    except Exception as e:  # noqa: BLE001
        rep.add("torch_compile", "LongConv: AOT graphs", "fail", _first_line(e))
    if not plan.gpu:  # the triton_op decomposition, traced without the interpreter
        job = bg.get("graphs")
        ok = job is not None and job.wait(_wait_s(rep, 240))
        res = job.result if ok else None
        name = "triton_op traced without a GPU: kernels in the AOT graphs"
        if res is None:
            rep.add("torch_compile", name, "fail", job.error if job else "not started")
        elif res["kind"] != "triton_op":
            rep.add("torch_compile", name, "skip", f"{res['kind']} on torch {res['torch']}: no triton_op")
        else:
            bad = [f"{k}: {v['error'] or 'no kernel in a graph'}" for k, v in res["traces"].items()
                   if v["error"] or not v["forward"] or not v["backward"]]
            bad += [res["error"]] if res["error"] else []
            bad += [f"torch's analysis of written arguments failed {res['analysis_failure_count']} times"
                    ] if res["analysis_failure_count"] else []
            lc = res["traces"].get("LongConv", {})
            rep.add("torch_compile", name, "fail" if bad else "pass",
                    "; ".join(bad) if bad else
                    f"{len(res['traces'])} traces (LongConv; ButterflyFFTConv; gated fftconv_fn on chip, and "
                    f"three-pass with static and dynamic shapes), written-argument analysis for an sm_90 target; "
                    f"LongConv forward "
                    f"{lc.get('forward')}, backward {lc.get('backward')}", traces=res["traces"])
    # 3. torch.compile(fullgraph=True) over a layer (GPU: inductor; the interpreter's
    # aot_eager run of it is step 2) and a model, forward and backward
    for what in ("LongConv", "SequenceModel") if plan.gpu else ("SequenceModel",):
        if rep.out_of_time():
            rep.add("torch_compile", f"{what} fullgraph", "skip", "time budget")
            continue
        t0 = time.time()
        try:
            err = _compiled_vs_eager(what, dev, backend, plan.layer)
            ok = err <= (1e-3 if plan.gpu else 1e-5)
            rep.add("torch_compile", f"{what} torch.compile(fullgraph=True, backend={backend!r}) fwd+bwd",
                    "pass" if ok else "fail",
                    f"no graph break (fullgraph=True raises on one); max |compiled - eager| / scale over "
                    f"the output and every parameter gradient {err:.1e}; {time.time() - t0:.0f} s")
        except Exception as e:  # noqa: BLE001
            hint = ("; rerun with NEUROCONV_FB_OPS=custom_op (`--only torch_compile`) to see whether the "
                    "opaque registration compiles" if OPS_KIND == "triton_op" else "")
            rep.add("torch_compile", f"{what} torch.compile(fullgraph=True, backend={backend!r})", "fail",
                    _first_line(e) + hint)
    if not plan.gpu:
        rep.add("torch_compile", "inductor compiling the Triton kernels", "skip",
                "GPU only (inductor cannot compile user Triton kernels for the CPU interpreter)")


def _op_samples(dev) -> list[tuple[str, tuple]]:
    import torch

    from neuroconv.kernels import flashbutterfly as fb
    from neuroconv.kernels import monarch  # noqa: F401 - registers its ops

    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g).to(dev)  # noqa: E731
    L = 21
    u, D, g1, g2 = r(1, 2, L), r(2), r(1, 2, L), r(1, 2, L)
    p = fb.make_plan(L)
    plan = (p.N, p.N1, p.N2, p.N3, p.three_pass)
    kspec = fb.kernel_spectrum(r(2, 13), L, False, p, torch.float32)
    P = 16
    mspec, tiles = r(2, 2, P, P), [r(2, P, P) * 0.1 for _ in range(6)]
    um = r(1, 2, 5)
    return [("flashbutterfly_fwd", (u, kspec, D, g1, g2, *plan)),
            ("flashbutterfly_bwd", (u, torch.randn_like(u), kspec, D, g1, g2, *plan, False, 13, 6, True, True)),
            ("monarch_conv_fwd", (um, mspec, D, *tiles, 10, 10, 0)),
            ("monarch_conv_bwd", (um, torch.randn_like(um), mspec, D, *tiles, 10, 10, 0))]


def _aot_graph_targets(dev, layer: dict) -> dict:
    """call_function targets (the ops, or the Triton kernels' wrappers) of the AOT forward
    and backward graphs of ``torch.compile(LongConv, fullgraph=True)``, and the compiled
    result's largest difference from eager (``err``)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    seen = {"forward": [], "backward": []}

    def recorder(which):
        def rec(gm, example_inputs):
            seen[which] += [str(n.target) for n in gm.graph.nodes if n.op == "call_function"
                            and ("triton" in str(n.target) or "neuroconv" in str(n.target))]
            return make_boxed_func(gm.forward)
        return rec

    seen["err"] = _compiled_vs_eager("LongConv", dev, aot_autograd(fw_compiler=recorder("forward"),
                                                                   bw_compiler=recorder("backward")), layer)
    return seen


def _compiled_vs_eager(what: str, dev, backend, layer: dict) -> float:
    import torch

    from neuroconv.layers import LongConv
    from neuroconv.model import SequenceModel

    torch.manual_seed(0)
    d, L = layer["d_model"], layer["L"]
    if what == "LongConv":
        model = LongConv(d, L, backend="triton", bidirectional=True).to(dev)
    else:
        model = SequenceModel(d, d, layer["n_layers"], "longconv", l_max=L,
                              layer_args=dict(backend="triton")).to(dev)
    x = torch.randn(2, L, d, device=dev)
    params = [p for p in model.parameters() if p.requires_grad]

    def step(m):
        out = m(x)
        return [out.detach(), *torch.autograd.grad(out.square().sum(), params)]

    want = step(model)
    torch._dynamo.reset()
    got = step(torch.compile(model, backend=backend, fullgraph=True))
    return max(float((a.float() - b.float()).abs().max() / max(1.0, float(b.float().abs().max())))
               for a, b in zip(got, want))


def section_timing(rep: Report, plan: Plan, cpu_timing: bool) -> None:
    from .bench import run_grid, wall_timer

    t = plan.timing
    if not plan.gpu and not cpu_timing:
        rep.add("timing", "GPU timing grid", "skip", "GPU only")
        return
    if plan.gpu:
        runs = [(dt, False) for dt in t["dtypes"]] + [(dt, True) for dt in t["gated_dtypes"]]
        B, H, lengths, rep_ms, dev = t["B"], t["H"], t["lengths"], t["rep_ms"], "cuda"
        backends = ("triton", "torch", "flashfftconv")
    else:  # the code path only, on the interpreter: tiny shapes, meaningless numbers
        runs, B, H, lengths, rep_ms, dev = [("float32", False), ("bfloat16", True)], 1, 1, (16,), 1, "cpu"
        backends = ("triton", "torch")
    for dt, gated in runs:
        for L in lengths:
            if rep.out_of_time():
                rep.add("timing", f"{dt}{' gated' if gated else ''} L={L}", "skip", "time budget")
                continue
            rows = run_grid(dtypes=(dt,), modes=("fwd", "fwd+bwd"), batches=(B,), H=H, lengths=(L,),
                            backends=backends, device=dev, rep_ms=rep_ms, gated=gated, verbose=False,
                            timer=None if plan.gpu else (lambda fn, ms: wall_timer(fn, ms, min_calls=1)))
            rep.timing_rows += rows
            for r in rows:
                if r["backend"] != "triton":
                    continue
                name = f"{r['dtype']} {r['mode']}{' gated' if gated else ''} B={B} H={H} L={L}"
                if r["status"] == "oom":
                    rep.add("timing", name, "skip", "out of memory")
                    continue
                if r["status"] != "ok":
                    rep.add("timing", name, "fail", r["status"], row=r)
                    continue
                hbm = f"{r['hbm_frac']:.0%}" if r["hbm_frac"] is not None else "-"
                detail = (f"{r['ms']:.3f} ms, {r['speedup'] or 0:.2f}x torch, HBM roofline {hbm} of "
                          f"{r['bytes_formula']} = {r['bytes'] / 1e9:.2f} GB, peak {r['peak_mb']} MB "
                          f"({r['peak_vs_torch'] or '-'} x torch), max |triton - torch| on the last rows "
                          f"{r['max_err'] if r['max_err'] is not None else '-'}")
                if not plan.gpu:
                    detail = "CPU interpreter, code path only, not a GPU number: " + detail
                # a sanity bound at this scale (the error budgets are the correctness section's)
                loose = 1e-3 if dt == "float32" else 0.25
                status = ("fail" if r["max_err"] is not None and not r["max_err"] < float("inf") else
                          "warn" if r["max_err"] is not None and r["max_err"] > loose else "info")
                rep.add("timing", name, status, detail + (f" (above {loose}: look)" if status == "warn" else ""),
                        row=r)


# ============================================================================ main


def _trace_triton_ops(path: str) -> int:
    """(Internal, run without the interpreter on the CPU.) What ``torch.compile`` makes of
    the ops as registered here (``triton_op`` on torch >= 2.6), traced without a GPU:

    - Triton's active driver is a stand-in reporting an sm_90 target, so that torch's
      analysis of which arguments each kernel writes (it compiles the kernels to TTIR)
      runs as on a GPU; its failures are counted (``analysis_failures``).
    - ``fullgraph=True`` over a LongConv layer, a ButterflyFFTConv, and over ``fftconv_fn`` with both gates and
      every gradient (on chip; three-pass with static and dynamic shapes): the Triton
      kernels in the partitioned AOT forward and backward graphs are listed. Nothing runs:
      tracing stops there. Writes JSON to ``path``.
    """
    import logging

    import torch
    import triton
    from triton.backends.compiler import GPUTarget
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch.partitioners import default_partition
    from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table

    from neuroconv.kernels import availability
    from neuroconv.layers import LongConv

    from neuroconv.kernels.flashbutterfly import fftconv_fn
    from neuroconv.kernels.launches import OPS_KIND

    class _Target:  # the one driver call the analysis makes
        def get_current_target(self):
            return GPUTarget("cuda", 90, 32)

    triton.runtime.driver.set_active(_Target())
    availability.triton_available = lambda device=None: True  # trace only: CPU tensors, no interpreter
    failures = []

    class _Count(logging.Handler):
        def emit(self, record):
            failures.append(record.getMessage()[:200])

    log = logging.getLogger("torch._higher_order_ops.triton_kernel_wrap")
    log.addHandler(_Count(level=logging.WARNING))
    log.propagate = False

    class Stop(Exception):
        pass

    def kernels(gm):
        return sorted({kernel_side_table.get_kernel(n.kwargs["kernel_idx"]).fn.__name__
                       for n in gm.graph.nodes
                       if n.op == "call_function" and "triton_kernel_wrapper" in str(n.target)})

    res = dict(kind=OPS_KIND, torch=torch.__version__, traces={}, error=None)

    def trace(name, fn, inputs, dynamic):
        out = dict(forward=[], backward=[], error=None)

        def partition(joint, joint_inputs, **kw):
            fw, bw = default_partition(joint, joint_inputs, **kw)
            out["forward"], out["backward"] = kernels(fw), kernels(bw)
            raise Stop

        torch._dynamo.reset()
        compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic,
                                 backend=aot_autograd(fw_compiler=lambda gm, ex: gm, partition_fn=partition))
        try:
            compiled(*inputs).sum().backward()
        except Exception as e:  # noqa: BLE001 - Stop (wrapped by dynamo) ends the trace
            if "Stop" not in f"{type(e).__name__}: {e}" or not out["forward"]:
                out["error"] = _first_line(e)
        res["traces"][name] = out

    try:
        from neuroconv.butterfly import ButterflyFFTConv

        trace("LongConv", LongConv(8, 40, backend="triton"), [torch.randn(2, 40, 8)], False)
        bf = ButterflyFFTConv(20, backend="triton")
        trace("ButterflyFFTConv", bf, [torch.randn(2, 3, 20, requires_grad=True),
                                       torch.randn(3, 20, requires_grad=True), torch.randn(3, requires_grad=True)],
              False)
        for L, mo in ((40, None), (1000, 512)):
            ins = [torch.randn(*s, requires_grad=True) for s in ((2, 3, L), (3, 2 * L - 1), (3,), (2, 3, L),
                                                                 (2, 3, L))]
            for dyn in (False, True) if mo else (False,):  # dynamic: the three-pass batch-chunk loop
                f = lambda u, k, D, g1, g2, mo=mo: fftconv_fn(u, k, D, causal=False, g1=g1, g2=g2,  # noqa: E731
                                                              max_onchip=mo)
                trace(f"fftconv_fn gated L={L}{' three-pass' if mo else ''}{' dynamic' if dyn else ''}",
                      f, ins, dyn)
    except Exception as e:  # noqa: BLE001
        res["error"] = _first_line(e)
    res["analysis_failures"] = failures[:5]
    res["analysis_failure_count"] = len(failures)
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--_trace-triton-ops"]:
        return _trace_triton_ops(argv[1])
    ap = argparse.ArgumentParser(prog="python -m neuroconv.kernel_tools.check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the report (every record) here")
    ap.add_argument("--markdown", help="write the tables here")
    ap.add_argument("--quick", action="store_true", help="fewer cases and lengths (~5 min on an H100/H200)")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--skip", nargs="+", choices=SECTIONS, default=[], help="skip these sections")
    ap.add_argument("--time-budget", type=float,
                    help="seconds; later checks are skipped (and recorded) past it (default: 330 for a "
                         "quick GPU run, none otherwise)")
    ap.add_argument("--cpu-timing", action="store_true",
                    help="without a GPU, run the timing code on tiny shapes (tests the code path only)")
    args = ap.parse_args(argv)
    import torch

    gpu = torch.cuda.is_available()
    if not gpu:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton
    elif os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        print("TRITON_INTERPRET is set on a machine with a GPU: unset it to check the GPU.", file=sys.stderr)
        return 2
    budget = args.time_budget if args.time_budget is not None else (330.0 if gpu and args.quick else None)
    rep = Report(argv, args.quick, args.json, args.markdown, budget)
    plan = make_plan(gpu, args.quick)
    wanted = [s for s in SECTIONS if (not args.only or s in args.only) and s not in args.skip]
    arch = 90
    if gpu:
        p = torch.cuda.get_device_properties(0)
        arch = 10 * p.major + p.minor
    with tempfile.TemporaryDirectory() as tmp:
        bg = _start_background(tmp, gpu, args.quick, arch) if {"compile", "offsets", "torch_compile"} & set(wanted) \
            else {}
        try:
            steps = dict(environment=lambda r: section_environment(r),
                         precompile=lambda r: section_precompile(r, plan, bg),
                         auto=lambda r: section_auto(r, plan),
                         correctness=lambda r: section_correctness(r, plan),
                         determinism=lambda r: section_determinism(r, plan),
                         offsets=lambda r: section_offsets(r, plan, bg),
                         compile=lambda r: section_compile(r, plan, bg, arch),
                         torch_compile=lambda r: section_torch_compile(r, plan, bg),
                         timing=lambda r: section_timing(r, plan, args.cpu_timing))
            if "environment" not in wanted:
                wanted.insert(0, "environment")
            for name in wanted:
                rep.run_section(name, steps[name])
        finally:
            for job in bg.values():
                if job.proc is not None and job.proc.poll() is None:
                    job.proc.kill()
                    job.proc.wait()
    s = rep.summary()
    print(f"\n{'FAIL' if rep.failed else 'PASS'}: " + ", ".join(f"{v} {k}" for k, v in s.items() if v)
          + f" in {time.time() - rep.t0:.0f} s" + (f"; report in {args.json}" if args.json else ""))
    for r in rep.records:
        if r["status"] == "fail":
            print(f"  FAIL {r['section']}: {r['name']}: {r['detail']}")
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
