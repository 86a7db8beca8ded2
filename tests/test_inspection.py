"""``signal-hf inspect``: oracle labels by name in the task's index order, and their per-round distribution."""

from __future__ import annotations

from datasets import Dataset

from signal_hf.config import DataConfig
from signal_hf.data import label_names_of
from signal_hf.inspection import inspect_run
from signal_hf.results import ResultsLog
from signal_hf.store import LocalStore


def test_label_names_of_the_recipe():
    assert label_names_of(DataConfig(dataset="ag_news")) == ("World", "Sports", "Business", "Sci/Tech")
    assert label_names_of(DataConfig(dataset="my/data", label_names=["b", "a"])) == ("b", "a")
    assert label_names_of(DataConfig(dataset="my/data")) is None


def test_label_names_of_a_builtin_task_are_the_loaded_tasks():
    # load_builtin reads AG News's names from its classes.txt: the recipe-only answer must agree with it.
    from signal_hf.data import BUILTIN_TASKS, load_task

    for name in BUILTIN_TASKS:
        cfg = DataConfig(dataset=name)
        assert label_names_of(cfg) == load_task(cfg).spec.label_names


def test_inspect_names_labels_in_index_order_and_counts_them(tmp_path):
    # A grid trial on AG News, whose label order (World, Sports, Business, Sci/Tech) is not alphabetical:
    # results.jsonl writes dicts with sorted keys, so the probe's label counts cannot give the order.
    trial = tmp_path / "seeds" / "seed-0"
    trial.mkdir(parents=True)
    (trial / "recipe.yaml").write_text("name: t\ndata:\n  dataset: ag_news\n")
    syn = ["syn-r1-0-a", "syn-r1-1-b", "syn-r1-2-c"]
    labeled = Dataset.from_dict(
        {
            "id": ["ag_news-train-1", *syn, "syn-r0-9-z"],
            "text": ["real", "about a war", "about a chip", "another war", "older"],
            "label": [1, 0, 3, 0, 2],
            "source": ["real", "synthetic", "synthetic", "synthetic", "synthetic"],
            "round_acquired": [0, 1, 1, 1, 0],
        }
    )
    LocalStore(trial / "store").save_round("signal-gen-seed0", 1, datasets={"labeled": labeled}, state={"round": 1})
    ResultsLog(trial).append(
        {
            "method": "signal-gen", "seed": 0, "round": 1, "step_percent": 20, "accuracy": 0.5, "labeled": 5,
            "generated": 4, "kept": 3, "dropped": 1, "dropped_by_reason": {"truncated": 1}, "acquired": 4,
            "selected_ids": ["ag_news-train-1", *syn], "selected_scores": dict.fromkeys(syn, 0.1),
            "probe_prompts": 2, "probe_labels_on": {"World": 1, "Sports": 0, "Business": 1, "Sci/Tech": 0},
        }
    )
    text = inspect_run(tmp_path)
    assert "| `syn-r1-0-a` | World | 0.1 | about a war |" in text
    assert "| `syn-r1-1-b` | Sci/Tech | 0.1 | about a chip |" in text
    # the distribution counts this round's synthetic picks only (not the real one, not round 0's)
    assert "| method | round | Sci/Tech | World | total |" in text
    assert "| signal-gen | 1 | 1 | 2 | 3 |" in text and "| signal-gen | all | 1 | 2 | 3 |" in text


def test_inspect_shows_both_texts_of_a_synthetic_pair(tmp_path):
    """A QNLI item is a question and a sentence; the oracle's label is about the two together."""
    from signal_hf.rl.probe import measure_policy

    trial = tmp_path / "seeds" / "seed-0"
    trial.mkdir(parents=True)
    (trial / "recipe.yaml").write_text("name: t\ndata:\n  dataset: qnli\n")
    labeled = Dataset.from_dict(
        {
            "id": ["syn-r1-0-a"], "text": ["Who wrote Hamlet?"], "text_pair": ["Hamlet is a play by Shakespeare."],
            "label": [0], "source": ["synthetic"], "round_acquired": [1],
        }
    )
    LocalStore(trial / "store").save_round("signal-gen-seed0", 1, datasets={"labeled": labeled}, state={"round": 1})
    ResultsLog(trial).append({"method": "signal-gen", "seed": 0, "round": 1, "step_percent": 20, "accuracy": 0.5, "labeled": 1,
                              "generated": 1, "kept": 1, "dropped": 0, "acquired": 1, "selected_ids": ["syn-r1-0-a"], "selected_scores": {"syn-r1-0-a": 0.2}, "probe_prompts": 1})
    assert "| `syn-r1-0-a` | entailment | 0.2 | Who wrote Hamlet? ‖ Hamlet is a play by Shakespeare. |" in inspect_run(tmp_path)

    # The probe's ranked completions carry both texts too (what inspect prints under "Top-rewarded").
    import torch
    from types import SimpleNamespace

    parse = lambda cs: [({"text": c.split("|")[0], "text_pair": c.split("|")[1]}, None) for c in cs]  # noqa: E731
    sample = measure_policy(["q1|s1", "q2|s2"], parse_fn=parse, classify=lambda items: SimpleNamespace(embeddings=torch.eye(2)),
                            score_outputs=lambda out: torch.tensor([0.3, 0.1]), annotate=None, real_embeddings=torch.eye(2))
    assert sample.texts == ["q1 ‖ s1", "q2 ‖ s2"]
