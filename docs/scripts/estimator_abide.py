"""LongConvClassifier() with its defaults vs correlation + LR, 10-fold by subject on an
ABIDE sequence store (the folds of `neuroconv decode --config abide`: Folds("group_kfold",
10, seed=0)), on the same arrays (NaN-padded whole recordings, the store's cleaned signals).

    neuroconv preprocess abide --data-dir ../shared/data/nilearn_data --out stores/abide
    python docs/scripts/estimator_abide.py stores/abide [SEED ...]

Prints one JSON line per fold and the paired summary; writes estimator_abide.json.
"""
import json
import sys
import time
import warnings

import numpy as np
from nilearn.connectome import ConnectivityMeasure
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neuroconv import LongConvClassifier
from neuroconv.data import SequenceStore
from neuroconv.engine.compare import fold_paired, mcnemar
from neuroconv.engine.folds import Folds

warnings.simplefilter("ignore")
store = SequenceStore(sys.argv[1])
man = store.manifest
man = man[man["diagnosis"].notna()].sort_values("id")
recs = [np.asarray(store.load(i), dtype=np.float32) for i in man["id"]]  # (T, C)
T = max(r.shape[0] for r in recs)
X = np.full((len(recs), recs[0].shape[1], T), np.nan, np.float32)
for i, r in enumerate(recs):
    X[i, :, : r.shape[0]] = r.T
y = man["diagnosis"].to_numpy()
groups = man["subject"].astype(str).to_numpy()
splits = Folds("group_kfold", 10, seed=0).split(y, groups)
seeds = [int(s) for s in sys.argv[2:]] or [0]
out = {"n": len(y), "folds": [], "seeds": seeds}
for f, (tr, te) in enumerate(splits):
    t = time.time()
    conn = make_pipeline(ConnectivityMeasure(kind="correlation", vectorize=True, discard_diagonal=True),
                         StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    conn.fit([recs[i] for i in tr], y[tr])
    pc = conn.predict([recs[i] for i in te])
    row = {"fold": f, "correlation_lr": accuracy_score(y[te], pc)}
    for s in seeds:
        clf = LongConvClassifier(random_state=s).fit(X[tr], y[tr], groups=groups[tr])
        pl = clf.predict(X[te])
        row[f"longconv_seed{s}"] = accuracy_score(y[te], pl)
        row[f"mcnemar_seed{s}"] = mcnemar(pl == y[te], pc == y[te])
    row["seconds"] = round(time.time() - t)
    print(json.dumps(row), flush=True)
    out["folds"].append(row)
for s in seeds:
    a = [r[f"longconv_seed{s}"] for r in out["folds"]]; b = [r["correlation_lr"] for r in out["folds"]]
    out[f"seed{s}"] = {"longconv": [np.mean(a), np.std(a)], "correlation_lr": [np.mean(b), np.std(b)],
                       "paired": fold_paired(a, b)}
    print(json.dumps(out[f"seed{s}"]), flush=True)
with open("estimator_abide.json", "w") as fh:
    json.dump(out, fh, indent=1, default=str)
