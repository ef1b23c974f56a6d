"""Markdown tables for docs/results.md from decode run folders.

    python docs/scripts/results_tables.py RUN [RUN ...] [--metric roc_auc]

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--metric", default="roc_auc")
    a = ap.parse_args(argv)
    print("\n\n".join(table(r, a.metric) for r in a.runs))


if __name__ == "__main__":
    main()
