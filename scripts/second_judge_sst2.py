"""Second-judge check of the synthetic labels of the SST-2 0.1 % ablation run to 200 % (README, #17).

A frozen mpnet + logistic regression on 3,000 train sentences labels the acquired synthetic items of each
generative method's last round; its agreement with the annotator's labels is compared with the two judges'
agreement on the real test set.

Run: .venv/bin/python scripts/second_judge_sst2.py runs/ablation_sst2/signal_gen runs/ablation_sst2/frozen
"""
import argparse
from pathlib import Path

import datasets
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from signal_hf.config.parsing import load_recipe
from signal_hf.data import load_task
from signal_hf.encoder import SentenceEncoder
from signal_hf.oracles import ModelOracle
from signal_hf.store.local import LocalStore

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("runs", nargs="+", help="grid run folders (with seeds/seed-N/store)")
p.add_argument("--annotator", default="runs/annotators/sst2")
a = p.parse_args()
datasets.disable_progress_bars()
torch.set_num_threads(2)

task = load_task(load_recipe("recipes/paper/ablation_sst2_0.1_signal_gen.yaml").data)
train, test = task.train.shuffle(seed=123).select(range(3000)), task.test
enc = SentenceEncoder("bundled:mpnet")
judge = LogisticRegression(C=1.0, max_iter=2000).fit(enc.embed(train["text"]).numpy(), np.array(train["label"]))
gold = np.array(test["label"])
by_judge = judge.predict(enc.embed(test["text"]).numpy())
by_annotator = np.array(ModelOracle(a.annotator, task.spec).annotate(test))
print(f"test ({len(test)} real): judge {100 * (by_judge == gold).mean():.1f} %, annotator {100 * (by_annotator == gold).mean():.1f} %, "
      f"agreement {100 * (by_judge == by_annotator).mean():.1f} %")

agree: dict[str, list[tuple[int, int]]] = {}
for run in a.runs:
    for store_dir in sorted(Path(run).glob("seeds/seed-*/store")):
        store = LocalStore(store_dir)
        for run_id in sorted(d.name for d in store_dir.iterdir() if d.is_dir()):
            labeled = store.load_round(run_id).datasets["labeled"]
            syn = labeled.filter(lambda r: str(r["id"]).startswith("syn"))
            same = int((judge.predict(enc.embed(syn["text"]).numpy()) == np.array(syn["label"])).sum())
            agree.setdefault(run_id.rsplit("-seed", 1)[0], []).append((same, len(syn)))
for method, per_seed in agree.items():
    total = sum(x for x, _ in per_seed) / sum(n for _, n in per_seed)
    print(method, "agreement on acquired synthetic per seed", [f"{100 * x / n:.0f} % ({x}/{n})" for x, n in per_seed], f"all {100 * total:.1f} %")
