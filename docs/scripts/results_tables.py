"""Markdown tables for docs/results.md from decode run folders.

    python docs/scripts/results_tables.py RUN [RUN ...] [--metric roc_auc|macro_f1|event_f1|...]
    python docs/scripts/results_tables.py --label-efficiency RUN [RUN ...]   # one run per fraction

For each run: the protocol line, one row per model (the headline score, i.e. the mean of
the units' own scores or the pooled score as the header says, with its 95% interval over
units or "too few units for an interval"; mean ± sd over folds; the choices made on the
inner splits: the median C, the folds whose kept state moved from the start, seconds per
fold), then the paired comparisons of each of our models with every other model on the
metric (difference of the headlines and its interval over the same unit resamples, the
paired test of the headline and its p-value, the sign-flip permutation p, exact or Monte
Carlo, Wilcoxon over units, McNemar's test of accuracy on unit-level predictions). Runs
written before headlines existed show their pooled scores.
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


TOO_FEW = "too few units for an interval"
_HEADLINE_WORDS = {"unit_mean": "mean over units", "pooled": "pooled"}


def _value(m: dict):
    """The headline of a metric's block (the pooled score in runs written before headlines)."""
    return m.get("value", m.get("difference", m.get("pooled")))


def _ci(m):
    ci = m.get("ci95")
    if ci:
        return f"{_fmt(_value(m))} [{_fmt(ci[0])}, {_fmt(ci[1])}]"
    return _fmt(_value(m)) + (f" ({TOO_FEW})" if m.get("interval") and _value(m) is not None else "")


def _signed_ci(m, digits=3):
    ci = m.get("ci95")
    if ci:
        return f"{_value(m):+.{digits}f} [{_fmt(ci[0])}, {_fmt(ci[1])}]"
    if _value(m) is None:
        return "n/a"
    return f"{_value(m):+.{digits}f}" + (f" ({TOO_FEW})" if m.get("interval") else "")


def _headline(blocks, metric: str) -> str:
    """How the runs' headline of ``metric`` is made, for a column header."""
    hs = {b[metric].get("headline", "pooled") for b in blocks if metric in b and "error" not in b}
    return ", ".join(_HEADLINE_WORDS.get(h, h) for h in sorted(hs)) or "pooled"


#: a table's headline metric (the first a run has, unless --metric names one), and its second column
HEADLINES = ("roc_auc", "macro_f1", "event_f1", "r2")
SECOND = ("balanced_accuracy", "kappa", "event_f1_50")


def table(run: Path, metric: str | None = None) -> str:
    m = json.loads((run / "metrics.json").read_text())
    blocks = [r for r in m["models"].values() if "error" not in r]
    metric = metric or next((k for k in HEADLINES if any(k in r for r in blocks)), "roc_auc")
    also = next((k for k in SECOND if k != metric and any(k in r for r in blocks)), "balanced_accuracy")
    p = m["protocol"]
    u = m.get("units", {})
    lines = [f"`{run.name}`: {p['cv']} by {p['group_by']}" + (f" within {p['within']}" if p.get("within") else "")
             + f", {p['n_folds']} folds, {m['n_samples']} samples; units: {u.get('column')} ({u.get('n')})"
             + (f"; train_fraction {p['train_fraction']} of {p.get('train_fraction_of', 'groups')}"
                if p.get("train_fraction", 1) < 1 else "")
             + (f"; align {p['align']}" if p.get("align") not in (None, "none") else "")
             + f"; {m['seconds']:.0f} s in all", "",
             f"| model | {metric}, {_headline(m['models'].values(), metric)} [95% CI over units] "
             f"| {also.replace('_', ' ')}, {_headline(m['models'].values(), also)} [95% CI] "
             f"| {metric} by fold (mean ± sd) | C (median) | folds whose filters/weights moved | s per fold |",
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
        lines.append(f"| {name} | {_ci(mm)} | {_ci(r[also]) if also in r else ''} | "
                     f"{_fmt(mm['mean'])}{sd}{undefined} | {np.median(cs):.3g} | {n_moved} | {secs:.1f} |"
                     if cs else
                     f"| {name} | {_ci(mm)} | {_ci(r[also]) if also in r else ''} | "
                     f"{_fmt(mm['mean'])}{sd}{undefined} | - | {n_moved} | {secs:.1f} |")
    if m.get("paired"):
        lines += ["", f"| {metric}: first − second | difference [95% CI] | p (test) | permutation p "
                      "| Wilcoxon p (units) | McNemar p (accuracy, units) |", "|---|---|---|---|---|---|"]
        for pr in m["paired"]:
            d = pr[metric]
            mc = pr.get("mcnemar_accuracy", pr.get("mcnemar", {}))
            test = f"{_p(d['p_value'])} ({d.get('test')})" if "p_value" in d else "n/a"
            perm = _p(d.get("permutation_p")) + (f" ({d['permutation']})" if d.get("permutation") else "")
            lines.append(f"| {pr['first']} − {pr['second']} | {_signed_ci(d)} | {test} | {perm} | "
                         f"{_p(d['wilcoxon'].get('p_value'))} | {_p(mc.get('p_value'))} ({mc.get('method', '-')}) |")
    return "\n".join(lines)


#: the project's models in runs written before metrics.json recorded each model's family
OURS = ("covconv", "scratch", "finetune", "probe", "attention")


def _ours(m: dict, name: str) -> bool:
    """Whether ``name`` is one of the project's models in run ``m`` (its recorded family)."""
    family = m["models"].get(name, {}).get("family")
    return family == "ours" if family else name in OURS


def _pair(m: dict, first: str, second: str, metric: str):
    """(difference, ci95, p, too few units) of first − second from a run's paired tests:
    the headline difference and the p-value of its paired test (the permutation p in
    runs written before headlines)."""
    for pr in m.get("paired", []):
        sign = 1 if (pr["first"], pr["second"]) == (first, second) else (
            -1 if (pr["first"], pr["second"]) == (second, first) else 0)
        if sign:
            d = pr[metric]
            ci = d.get("ci95")
            ci = None if not ci else sorted(sign * c for c in ci)
            diff = d["difference"]
            return (None if diff is None else sign * diff, ci, d.get("p_value", d.get("permutation_p")),
                    bool(d.get("interval")))
    return None


def label_efficiency_table(runs: list[Path], metric: str, comparator: str | None = None) -> str:
    """One row per training fraction: every model's headline score [95% CI over units], then
    finetune and probe against scratch and against the comparator named in advance (the
    runs' ``decode.comparator``, or ``comparator``; never the baseline that scored best on
    the test folds), each difference with its interval over the same unit resamples and the
    p-value of its paired test."""
    ms = sorted((json.loads((r / "metrics.json").read_text()) for r in runs),
                key=lambda m: float(m["protocol"].get("train_fraction", 1.0)))
    models = [k for k in ms[0]["models"]]
    heads = _headline([b for m in ms for b in m["models"].values()], metric)
    lines = [f"{metric}, {heads} [95% CI over units]", "",
             "| fraction | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    cmp_lines = ["| fraction | comparison | difference [95% CI] | p |", "|---|---|---|---|"]
    for m in ms:
        frac = float(m["protocol"].get("train_fraction", 1.0))
        cells = [(_ci(m["models"][k][metric]) if k in m["models"] and metric in m["models"][k]
                  else "failed") for k in models]
        lines.append(f"| {frac:g} | " + " | ".join(cells) + " |")
        named = comparator or m["protocol"].get("comparator") or None
        if named and _ours(m, named):
            raise ValueError(f"the comparator {named!r} is one of the project's models; name a baseline.")
        for ours in ("finetune", "probe"):
            for other in ("scratch", named):
                got = other and _pair(m, ours, other, metric)
                if got and got[0] is not None:
                    d, ci, p, few = got
                    ci_s = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else (f"({TOO_FEW})" if few else "n/a")
                    label = f"{ours} − {other}" + (" (comparator)" if other == named else "")
                    cmp_lines.append(f"| {frac:g} | {label} | {d:+.3f} {ci_s} | {_p(p)} |")
    note = [] if any(comparator or m["protocol"].get("comparator") for m in ms) else [
        "", "No comparator was named in advance (decode.comparator, or --comparator): only scratch is compared."]
    return "\n".join(lines + [""] + cmp_lines + note)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--metric", default=None,
                    help="the headline metric (default: the first of roc_auc, macro_f1, event_f1, r2 a run has)")
    ap.add_argument("--label-efficiency", action="store_true",
                    help="one table over the runs (one per decode.train_fraction)")
    ap.add_argument("--comparator", default=None,
                    help="the baseline the label-efficiency table compares with (default: the runs' "
                         "decode.comparator); never chosen by its test score")
    a = ap.parse_args(argv)
    if a.label_efficiency:
        print(label_efficiency_table(a.runs, a.metric or "roc_auc", a.comparator))
        return
    print("\n\n".join(table(r, a.metric) for r in a.runs))


if __name__ == "__main__":
    main()
