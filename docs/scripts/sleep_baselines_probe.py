"""The sleep baselines of neuroconv.brain.sleep on the shared DREAMS and Sleep-EDF data.

    python docs/scripts/sleep_baselines_probe.py --data-dir ../shared/data [--part spindles|staging|all]
        [--out sleep_baselines_probe.json]

Spindles (DREAMS, expert 1, by-event F1 at IoU >= 0.2, per excerpt, their mean, and pooled
counts): YASA at its defaults; YASA with thresholds chosen on the other five excerpts
(leave-one-excerpt-out, ``YasaSpindles``); the sigma-window logistic regression
(``SigmaSpindleClassifier``, leave-one-excerpt-out). Each excerpt runs at its own rate
except excerpt 3 (50 Hz), upsampled to 100 Hz with ``mne.filter.resample`` because YASA's
broadband filter (1-30 Hz) needs a Nyquist frequency above 30 Hz. Also YASA's time on
excerpt 2 (200 Hz, 30 min; median of 5 runs).

Staging (Sleep-EDF features, 14 nights of 7 subjects): leave-one-subject-out; each night
kept from 60 epochs (30 min) before its first non-wake epoch to 60 epochs after its last;
features standardised on the training part; every choice on an inner split by subject of
the training part (engine ``Folds(stratify=False).holdout``: one subject held out):

- LR: ``LogisticRegression(class_weight="balanced")``, C from 1e-3..1e2 by the inner
  split's class-weighted log loss, then refitted on the whole training part;
- LightGBM: ``LGBMClassifier(learning_rate=0.05, num_leaves=31, class_weight="balanced")``,
  the number of trees (<= 2000) early-stopped on the inner split's class-weighted log loss
  (patience 50), then refitted on the whole training part with that many trees;
- +HMM: ``HMMSmoother(alpha=1, classifier_prior="uniform")`` fitted on the training
  nights' stage sequences (uniform: the classifiers are class-balanced), Viterbi on the
  test night's posteriors;
- GRU: ``SleepGRU(72, 5, hidden_size=64, num_layers=2, dropout=0.2, proj_size=64)``,
  AdamW (lr 1e-3, weight decay 1e-2, gradient norm clipped at 1), class-weighted
  cross-entropy (balanced weights of the inner-training epochs), each step on 16 random
  crops of 128 epochs (64 min) of the inner-training nights (nights drawn in proportion to
  their length), at most 400 steps; the class-weighted loss on the held-out subject's whole
  nights every 10 steps, stopped after 8 checks without improvement; the best checkpoint
  is kept (not refitted on the held-out subject) and predicts whole test nights.

Metrics: accuracy, macro-F1 and Cohen's kappa pooled over all test epochs of all folds,
and their mean over the 14 test nights (a night's macro-F1 averages the stages present in
its truth or prediction, scikit-learn's default). Seconds are wall-clock per model summed
over folds (for +HMM: the HMM's fit and decoding only, on top of its classifier's). BLAS
and torch run on one thread (the measuring machine's 2 cores are shared).
Writes the JSON summary to ``--out`` (atomically) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

N_EPOCHS_MARGIN = 60  # 30 min of 30-s epochs


# --------------------------------------------------------------------------- spindles
def load_dreams(root: Path) -> dict:
    import mne

    recs = {}
    for k in (1, 2, 3, 5, 6, 8):
        x = np.loadtxt(root / f"excerpt{k}.txt", skiprows=1)
        sf = float(round(len(x) / 1800))  # 30-minute excerpts
        native = sf
        if sf < 100:
            x = mne.filter.resample(x, up=100 / sf, verbose=False)
            sf = 100.0
        ev = np.loadtxt(root / f"Visual_scoring1_excerpt{k}.txt", skiprows=1, ndmin=2)
        true = np.stack([np.round(ev[:, 0] * sf), np.round((ev[:, 0] + ev[:, 1]) * sf)], 1).astype(np.int64)
        recs[k] = {"x": x, "sf": sf, "native_sf": native, "true": true}
    return recs


def run_spindles(data_dir: Path) -> dict:
    import yasa

    from neuroconv.brain.sleep import SigmaSpindleClassifier, YasaSpindles, yasa_spindles
    from neuroconv.engine.events import event_scores, match_events

    recs = load_dreams(data_dir / "dreams-spindles")
    out = {"iou": 0.2, "expert": 1, "yasa_version": yasa.__version__}
    x2 = recs[2]
    times = []
    for _ in range(5):
        t = time.perf_counter()
        yasa.spindles_detect(x2["x"], x2["sf"])
        times.append(time.perf_counter() - t)
    out["yasa_seconds_excerpt2"] = float(np.median(times))

    def score(preds: dict) -> dict:
        rows, counts = {}, np.zeros(3, np.int64)
        for k, p in preds.items():
            m = match_events(recs[k]["true"], p, 0.2)
            counts += m.counts
            rows[k] = {"tp": m.tp, "fp": m.fp, "fn": m.fn, "f1": event_scores(m)[2]}
        return {"per_excerpt": rows, "mean_f1": float(np.mean([r["f1"] for r in rows.values()])),
                "pooled": dict(zip(("precision", "recall", "f1"), event_scores(tuple(counts))))}

    t = time.perf_counter()
    out["yasa_defaults"] = score({k: yasa_spindles(r["x"], r["sf"]) for k, r in recs.items()})
    out["yasa_defaults"]["seconds"] = time.perf_counter() - t
    for name, make in (("yasa_loeo", YasaSpindles), ("sigma_lr_loeo", SigmaSpindleClassifier)):
        t, preds, chosen = time.perf_counter(), {}, {}
        for k in recs:
            tr = [j for j in recs if j != k]
            est = make().fit([recs[j]["x"] for j in tr], [recs[j]["sf"] for j in tr], [recs[j]["true"] for j in tr])
            preds[k] = est.predict(recs[k]["x"], recs[k]["sf"])
            chosen[k] = est.thresh_ if name == "yasa_loeo" else {"C": est.C_, "threshold": est.threshold_}
        out[name] = score(preds)
        out[name]["chosen"] = chosen
        out[name]["seconds"] = time.perf_counter() - t
        print(name, json.dumps(out[name]["pooled"]), round(out[name]["mean_f1"], 3), flush=True)
    return out


# --------------------------------------------------------------------------- staging
def load_nights(root: Path) -> list[dict]:
    nights = []
    for f in sorted(root.glob("SC4*.npz")):
        d = np.load(f, allow_pickle=False)
        X, y = np.asarray(d["X"], np.float64), np.asarray(d["y"], np.int64)
        sleep = np.flatnonzero(y != 0)
        lo, hi = max(0, sleep[0] - N_EPOCHS_MARGIN), min(len(y), sleep[-1] + 1 + N_EPOCHS_MARGIN)
        nights.append({"name": f.stem, "subject": f.stem[3:5], "X": X[lo:hi], "y": y[lo:hi], "n_full": len(y)})
    return nights


def _weighted_log_loss(y, p, K):
    from sklearn.metrics import log_loss
    from sklearn.utils.class_weight import compute_sample_weight

    return log_loss(y, p, sample_weight=compute_sample_weight("balanced", y), labels=np.arange(K))


def fit_lr(Xtr, ytr, Xva, yva, K):
    from sklearn.linear_model import LogisticRegression

    Cs = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]
    losses = [_weighted_log_loss(yva, LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
                                 .fit(Xtr, ytr).predict_proba(Xva), K) for C in Cs]
    C = Cs[int(np.argmin(losses))]
    return C, lambda X_all, y_all: LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(X_all, y_all)


def fit_lgbm(Xtr, ytr, Xva, yva, K):
    import lightgbm
    from sklearn.utils.class_weight import compute_sample_weight

    kw = dict(learning_rate=0.05, num_leaves=31, class_weight="balanced", n_jobs=1, random_state=0, verbose=-1)
    m = lightgbm.LGBMClassifier(n_estimators=2000, **kw).fit(
        Xtr, ytr, eval_set=[(Xva, yva)], eval_sample_weight=[compute_sample_weight("balanced", yva)],
        callbacks=[lightgbm.early_stopping(50, verbose=False)])
    n = int(m.best_iteration_ or 2000)
    return n, lambda X_all, y_all: lightgbm.LGBMClassifier(n_estimators=n, **kw).fit(X_all, y_all)


def _batch(nights_X, nights_y=None):
    import torch

    L = max(len(x) for x in nights_X)
    B, F = len(nights_X), nights_X[0].shape[1]
    x = torch.zeros(B, L, F)
    mask = torch.zeros(B, L, dtype=torch.bool)
    y = torch.zeros(B, L, dtype=torch.long)
    for i, a in enumerate(nights_X):
        x[i, : len(a)] = torch.as_tensor(a, dtype=torch.float32)
        mask[i, : len(a)] = True
        if nights_y is not None:
            y[i, : len(a)] = torch.as_tensor(nights_y[i])
    return {"x": x, "mask": mask}, y


def fit_gru(tr_X, tr_y, va_X, va_y, K, seed, *, crop=128, batch_size=16, max_steps=400, every=10, patience=8):
    import torch
    from sklearn.utils.class_weight import compute_class_weight

    from neuroconv.brain.sleep import SleepGRU

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ally = np.concatenate(tr_y)
    w = np.ones(K)
    present = np.unique(ally)
    w[present] = compute_class_weight("balanced", classes=present, y=ally)
    crit = torch.nn.CrossEntropyLoss(weight=torch.as_tensor(w, dtype=torch.float32))
    model = SleepGRU(tr_X[0].shape[1], K, hidden_size=64, num_layers=2, dropout=0.2, proj_size=64)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    bva, yva = _batch(va_X, va_y)
    lengths = np.array([len(y) for y in tr_y])
    best, best_state, bad, steps = np.inf, None, 0, 0
    for step in range(1, max_steps + 1):
        nights = rng.choice(len(tr_y), batch_size, p=lengths / lengths.sum())
        starts = [int(rng.integers(0, max(1, lengths[i] - crop + 1))) for i in nights]
        btr, ytr = _batch([tr_X[i][s:s + crop] for i, s in zip(nights, starts)],
                          [tr_y[i][s:s + crop] for i, s in zip(nights, starts)])
        model.train()
        opt.zero_grad()
        loss = crit(model(btr)[btr["mask"]], ytr[btr["mask"]])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % every == 0:
            model.eval()
            with torch.no_grad():
                v = float(crit(model(bva)[bva["mask"]], yva[bva["mask"]]))
            if v < best:
                best, bad, steps = v, 0, step
                best_state = {k: t.clone() for k, t in model.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
    model.load_state_dict(best_state)
    model.eval()
    return model, steps


def run_staging(data_dir: Path) -> dict:
    import torch
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score
    from sklearn.preprocessing import StandardScaler

    from neuroconv.brain.sleep import HMMSmoother, sleep_gru_n_parameters
    from neuroconv.engine.folds import Folds

    K = 5
    nights = load_nights(data_dir / "sleep-edf" / "features")
    subjects = np.array([n["subject"] for n in nights])
    models = ("lr", "lr_hmm", "lgbm", "lgbm_hmm", "gru")
    pred = {m: [None] * len(nights) for m in models}
    seconds = dict.fromkeys(models, 0.0)
    chosen = []
    for fold, test_subject in enumerate(np.unique(subjects)):
        te = np.flatnonzero(subjects == test_subject)
        tr = np.flatnonzero(subjects != test_subject)
        # inner split by subject of the training nights (one value per night)
        h = Folds("leave_group_out", stratify=False, seed=0).holdout(np.zeros(len(tr)), subjects[tr])
        itr, iva = tr[h.train], tr[h.val]
        cat = lambda idx, key: np.concatenate([nights[i][key] for i in idx])  # noqa: E731
        scaler_inner = StandardScaler().fit(cat(itr, "X"))
        scaler = StandardScaler().fit(cat(tr, "X"))
        Xi_tr, yi_tr = scaler_inner.transform(cat(itr, "X")), cat(itr, "y")
        Xi_va, yi_va = scaler_inner.transform(cat(iva, "X")), cat(iva, "y")
        X_tr, y_tr = scaler.transform(cat(tr, "X")), cat(tr, "y")
        t = time.perf_counter()
        hmm = HMMSmoother(n_classes=K, alpha=1.0, classifier_prior="uniform").fit([nights[i]["y"] for i in tr])
        t_hmm = time.perf_counter() - t
        seconds["lr_hmm"] += t_hmm
        seconds["lgbm_hmm"] += t_hmm
        row = {"test_subject": test_subject, "inner_val_subjects": sorted(set(subjects[iva]))}
        for name, fitter in (("lr", fit_lr), ("lgbm", fit_lgbm)):
            t = time.perf_counter()
            choice, refit = fitter(Xi_tr, yi_tr, Xi_va, yi_va, K)
            model = refit(X_tr, y_tr)
            probas = {}
            for i in te:
                p = np.zeros((len(nights[i]["y"]), K))
                p[:, model.classes_] = model.predict_proba(scaler.transform(nights[i]["X"]))
                probas[i], pred[name][i] = p, p.argmax(1)
            seconds[name] += time.perf_counter() - t
            t = time.perf_counter()
            for i in te:
                pred[name + "_hmm"][i] = hmm.predict(probas[i])
            seconds[name + "_hmm"] += time.perf_counter() - t  # the smoothing only
            row[name] = choice
        t = time.perf_counter()
        gru, steps = fit_gru([scaler_inner.transform(nights[i]["X"]) for i in itr], [nights[i]["y"] for i in itr],
                             [scaler_inner.transform(nights[i]["X"]) for i in iva], [nights[i]["y"] for i in iva],
                             K, seed=fold)
        with torch.no_grad():
            for i in te:
                b, _ = _batch([scaler_inner.transform(nights[i]["X"])])
                pred["gru"][i] = gru(b)[0].argmax(-1).numpy()
        seconds["gru"] += time.perf_counter() - t
        row["gru_steps"] = steps
        chosen.append(row)
        print(json.dumps(row), {m: round(s) for m, s in seconds.items()}, flush=True)

    def metrics(y, p):
        return {"accuracy": float(accuracy_score(y, p)), "macro_f1": float(f1_score(y, p, average="macro")),
                "kappa": float(cohen_kappa_score(y, p))}

    out = {"n_nights": len(nights), "n_epochs": int(sum(len(n["y"]) for n in nights)),
           "gru_n_parameters": sleep_gru_n_parameters(nights[0]["X"].shape[1], K, 64, 2, 64),
           "chosen": chosen, "seconds": seconds, "models": {}}
    y_all = np.concatenate([n["y"] for n in nights])
    for m in models:
        per_night = [metrics(n["y"], pred[m][i]) for i, n in enumerate(nights)]
        out["models"][m] = {"pooled": metrics(y_all, np.concatenate(pred[m])),
                            "night_mean": {k: float(np.mean([r[k] for r in per_night])) for k in per_night[0]},
                            "per_night": {n["name"]: r for n, r in zip(nights, per_night)}}
        print(m, json.dumps(out["models"][m]["pooled"]), json.dumps(out["models"][m]["night_mean"]), flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    ap.add_argument("--part", choices=("spindles", "staging", "all"), default="all")
    ap.add_argument("--out", type=Path, default=Path("sleep_baselines_probe.json"))
    args = ap.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", message=".*eval_set.* is deprecated")
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.uname().nodename} ({os.cpu_count()} CPUs, shared)"}
    if args.part in ("spindles", "all"):
        result["spindles"] = run_spindles(args.data_dir)
    if args.part in ("staging", "all"):
        result["staging"] = run_staging(args.data_dir)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
