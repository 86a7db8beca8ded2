"""A newcomer's own CSV of another domain, default classifier settings: the curve must rise."""

from __future__ import annotations

import csv
import random

from signal_hf.config import config_from_dict
from signal_hf.loop import run_experiment
from signal_hf.results import read_results

_INTENTS = {
    "billing": ["I was charged twice for my {x}", "why is there an extra fee on my {x} invoice", "please refund the payment for the {x}",
                "my card was billed the wrong amount for the {x}", "the price of the {x} on my receipt is wrong", "cancel the charge for my {x} subscription"],
    "delivery": ["my {x} has not arrived yet", "the courier left the {x} at the wrong address", "when will the {x} be shipped",
                 "tracking says the {x} is stuck in transit", "the {x} package arrived damaged", "can I change the delivery date of my {x}"],
    "account": ["I cannot log in to see my {x}", "reset my password, I need my {x} history", "my account is locked since I ordered the {x}",
                "how do I change the email on the account I used for the {x}", "two factor code never comes when I check my {x}", "delete my profile and the saved {x} details"],
}
_THINGS = ["laptop", "sofa", "phone", "coffee maker", "jacket", "printer", "bike", "lamp", "headphones", "desk"]


def _write_split(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ticket", "intent"])
        w.writerows(rows)


def test_custom_csv_with_default_classifier_rises(tmp_path):
    rng = random.Random(0)
    rows = [(t.format(x=x), intent) for intent, ts in _INTENTS.items() for t in ts for x in _THINGS]
    rng.shuffle(rows)
    folder = tmp_path / "tickets"
    folder.mkdir()
    _write_split(folder / "train.csv", rows[:120])
    _write_split(folder / "test.csv", rows[120:])
    # Only data fields and strategies: every classifier and loop setting is the default.
    cfg = config_from_dict({
        "data": {"dataset": str(folder), "text_column": "ticket", "label_column": "intent", "pool_fraction": 0.5, "task_type": "topic"},
        "acquisition": {"strategies": ["random"]},
        "output": {"output_dir": str(tmp_path / "run")},
    })
    run_experiment(cfg, show_progress=False)
    rows_out = read_results(tmp_path / "run")
    by_seed: dict[int, dict[int, float]] = {}
    for r in rows_out:
        by_seed.setdefault(r["seed"], {})[r["step_percent"]] = r["accuracy"]
    assert sorted(by_seed) == [0, 1]
    first = sum(s[10] for s in by_seed.values()) / 2
    last = sum(s[100] for s in by_seed.values()) / 2
    # 6 labels (10 % of a 60-ticket pool) → 60 labels: the curve rises and ends high.
    assert last >= first + 0.05, (first, last)
    assert last > 0.9, by_seed
