"""Markdown tables for docs/results.md from decode run folders.

    python docs/scripts/results_tables.py RUN [RUN ...] [--metric roc_auc]
    python docs/scripts/results_tables.py --label-efficiency RUN [RUN ...]   # one run per fraction

For each run: the protocol line, one row per model (pooled score with its 95% interval
over units, mean ± sd over folds, the choices made on the inner splits: the median C,
the folds whose kept state moved from the start, seconds per fold), then the paired
comparisons of each of our models with every other model on the metric (difference of
pooled scores and its interval over the same unit resamples, sign-flip permutation p,
Wilcoxon over units, McNemar on unit-level predictions).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _fmt(v, digits=3):
    return "n/a" if v is None else f"{v:.{digits}f}"


def _p(v):
    return "n/a" if v is None else (f"{v:.2g}" if v >= 0.001 else f"{v:.1e}")


def _ci(m):
    ci = m.get("ci95")
    return f"{_fmt(m.get('pooled'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else _fmt(m.get("pooled"))


def table(run: Path, metric: str) -> str:
    m = json.loads((run / "metrics.json").read_text())
    p = m["protocol"]
    u = m.get("units", {})
    lines = [f"`{run.name}`: {p['cv']} by {p['group_by']}" + (f" within {p['within']}" if p.get("within") else "")
             + f", {p['n_folds']} folds, {m['n_samples']} samples; units: {u.get('column')} ({u.get('n')})"
             + (f"; train_fraction {p['train_fraction']} of {p.get('train_fraction_of', 'groups')}"
                if p.get("train_fraction", 1) < 1 else "")
             + (f"; align {p['align']}" if p.get("align") not in (None, "none") else "")
             + f"; {m['seconds']:.0f} s in all", "",
             f"| model | {metric} [95% CI over units] | balanced accuracy [95% CI] | {metric} by fold (mean ± sd) "
             "| C (median) | folds whose filters/weights moved | s per fold |",
             "|---|---|---|---|---|---|---|"]
    for name, r in m["models"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:80]} | | | | | |")
            continue
        mm = r[metric]
        sd = f" ± {mm['sd']:.3f}" if mm.get("sd") is not None else ""
        undefined = f" ({mm['n_undefined']} undefined)" if mm.get("n_undefined") else ""
        cs = [h["C"] for h in r.get("hyperparameters", []) if isinstance(h.get("C"), (int, float))]
        moved = [t for t in (r.get("training") or []) if t is not None and "best_step" in t]
        n_moved = f"{sum(1 for t in moved if t['best_step'])}/{len(moved)}" if moved else "-"
        secs = np.mean(r.get("seconds", [np.nan]))
        lines.append(f"| {name} | {_ci(mm)} | {_ci(r['balanced_accuracy']) if 'balanced_accuracy' in r else ''} | "
                     f"{_fmt(mm['mean'])}{sd}{undefined} | {np.median(cs):.3g} | {n_moved} | {secs:.1f} |"
                     if cs else
                     f"| {name} | {_ci(mm)} | {_ci(r['balanced_accuracy']) if 'balanced_accuracy' in r else ''} | "
                     f"{_fmt(mm['mean'])}{sd}{undefined} | - | {n_moved} | {secs:.1f} |")
    if m.get("paired"):
        lines += ["", f"| {metric}: first − second | difference [95% CI] | permutation p | Wilcoxon p (units) "
                      "| McNemar p (units) |", "|---|---|---|---|---|"]
        for pr in m["paired"]:
            d = pr[metric]
            ci = d.get("ci95")
            mc = pr.get("mcnemar", {})
            lines.append(f"| {pr['first']} − {pr['second']} | {_fmt(d['difference'])} "
                         f"[{_fmt(ci[0]) if ci else 'n/a'}, {_fmt(ci[1]) if ci else 'n/a'}] | "
                         f"{_p(d.get('permutation_p'))} | {_p(d['wilcoxon'].get('p_value'))} | "
                         f"{_p(mc.get('p_value'))} ({mc.get('method', '-')}) |")
    return "\n".join(lines)


#: the sequence models of the project; every other model in a run is a baseline
OURS = ("covconv", "scratch", "finetune", "probe", "attention")


def _pair(m: dict, first: str, second: str, metric: str):
    """(difference, ci95, permutation p) of first − second from a run's paired tests."""
    for pr in m.get("paired", []):
        sign = 1 if (pr["first"], pr["second"]) == (first, second) else (
            -1 if (pr["first"], pr["second"]) == (second, first) else 0)
        if sign:
            d = pr[metric]
            ci = d.get("ci95")
            ci = None if not ci else sorted(sign * c for c in ci)
            return sign * d["difference"], ci, d.get("permutation_p")
    return None


def label_efficiency_table(runs: list[Path], metric: str) -> str:
    """One row per training fraction: every model's pooled score [95% CI over units], then
    finetune and probe against scratch and against the best baseline of that run (the
    baseline with the highest pooled score), each difference with its interval and
    permutation p over the same unit resamples."""
    ms = sorted((json.loads((r / "metrics.json").read_text()) for r in runs),
                key=lambda m: float(m["protocol"].get("train_fraction", 1.0)))
    models = [k for k in ms[0]["models"]]
    lines = ["| fraction | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    cmp_lines = ["| fraction | comparison | difference [95% CI] | permutation p |", "|---|---|---|---|"]
    for m in ms:
        frac = float(m["protocol"].get("train_fraction", 1.0))
        cells = [(_ci(m["models"][k][metric]) if k in m["models"] and metric in m["models"][k]
                  else "failed") for k in models]
        lines.append(f"| {frac:g} | " + " | ".join(cells) + " |")
        base = {k: r[metric]["pooled"] for k, r in m["models"].items()
                if k not in OURS and metric in r and r[metric].get("pooled") is not None}
        best = max(base, key=base.get) if base else None
        for ours in ("finetune", "probe"):
            for other in ("scratch", best):
                got = other and _pair(m, ours, other, metric)
                if got:
                    d, ci, p = got
                    ci_s = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "n/a"
                    label = f"{ours} − {other}" + (" (best baseline)" if other == best else "")
                    cmp_lines.append(f"| {frac:g} | {label} | {d:+.3f} {ci_s} | {_p(p)} |")
    return "\n".join(lines + [""] + cmp_lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--metric", default="roc_auc")
    ap.add_argument("--label-efficiency", action="store_true",
                    help="one table over the runs (one per decode.train_fraction)")
    a = ap.parse_args(argv)
    if a.label_efficiency:
        print(label_efficiency_table(a.runs, a.metric))
        return
    print("\n\n".join(table(r, a.metric) for r in a.runs))


if __name__ == "__main__":
    main()
