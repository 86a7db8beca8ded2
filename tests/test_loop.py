"""End-to-end: a tiny real run of every pool-based strategy, the report, and resume."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from signal_hf.config import config_from_dict
from signal_hf.loop import run_experiment
from signal_hf.results import read_results
from signal_hf.store import LocalStore

STRATEGIES = ["random", "entropy", "margin", "least_confidence", "bert_km", "badge", "cal", "signal"]


def tiny(output_dir, **loop):
    return config_from_dict(
        {
            "name": "tiny",
            "data": {"dataset": "sst2", "pool_fraction": 0.0005, "max_test_samples": 48},  # |R| = 34
            "classifier": {"max_steps": 3, "max_length": 32, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 64},
            "acquisition": {"strategies": STRATEGIES, "k": 3},
            "loop": {"seeds": [0], "initial_fraction": 0.2, "step_fraction": 0.2, "max_fraction": 0.6, **loop},
            "output": {"output_dir": str(output_dir)},
        }
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    exp = run_experiment(tiny(out), show_progress=False)
    return out, exp


def test_every_strategy_runs_and_labels_grow(run):
    out, exp = run
    rows = read_results(out)
    assert {r["method"] for r in rows} == set(STRATEGIES)
    by = {(r["method"], r["round"]): r for r in rows}
    # |R| = 34: 7 initial (20%), b = 7, capped at round(0.6 * 34) = 20.
    assert all([by[(m, r)]["labeled"] for r in range(3)] == [7, 14, 20] for m in STRATEGIES)
    # Same seed → same initial set → the same round-0 model for every method.
    assert len({by[(m, 0)]["accuracy"] for m in STRATEGIES}) == 1
    store = LocalStore(out / "store")
    for m in STRATEGIES:
        rec = store.load_round(f"{m}-seed0", f"{m}-seed0-round-2")
        lab = rec.datasets["labeled"]
        ids = lab["id"][:]
        assert len(ids) == len(set(ids)) == 20
        # Real items are labeled with their gold labels.
        gold = dict(zip(rec.datasets["real_pool"]["id"][:], rec.datasets["real_pool"]["label"][:]))
        assert all(gold[i] == l for i, l in zip(ids, lab["label"][:]))
        assert rec.state["accuracy"] == by[(m, 2)]["accuracy"]
        assert by[(m, 1)]["selected_ids"] == [i for i, r in zip(ids, lab["round_acquired"][:]) if r == 1]
    # Different strategies pick differently (entropy vs random at round 1).
    assert by[("entropy", 1)]["selected_ids"] != by[("random", 1)]["selected_ids"]


def test_report_table_and_plot(run):
    out, exp = run
    text = (out / "summary.md").read_text()
    assert "| signal |" in text and "20%" in text and "60%" in text
    assert (out / "learning_curves.png").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert {s["step_percent"] for s in summary} == {20, 40, 60}
    import datasets

    ds = datasets.load_dataset("json", data_files=str(out / "results.jsonl"), split="train")
    assert len(ds) == 3 * len(STRATEGIES)


def test_resume_continues_identically(run, tmp_path):
    out, _ = run
    # A shorter run, then a continuation to the same end point.
    part = tmp_path / "part"
    cfg = tiny(part, max_fraction=0.4)
    cfg.acquisition.strategies = ["signal", "badge"]
    run_experiment(cfg, show_progress=False)
    assert max(r["round"] for r in read_results(part)) == 1
    cfg = tiny(part)
    cfg.acquisition.strategies = ["signal", "badge"]
    run_experiment(cfg, show_progress=False)
    full = {(r["method"], r["round"]): r for r in read_results(out)}
    resumed = {(r["method"], r["round"]): r for r in read_results(part)}
    for m in ("signal", "badge"):
        assert resumed[(m, 2)]["selected_ids"] == full[(m, 2)]["selected_ids"]
        assert resumed[(m, 2)]["accuracy"] == pytest.approx(full[(m, 2)]["accuracy"])


def test_rerunning_a_finished_run_trains_nothing(run, tmp_path, monkeypatch):
    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    before = read_results(copy)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr("signal_hf.loop.training.fit_classifier", no_training)
    run_experiment(tiny(copy), show_progress=False)
    assert read_results(copy) == before


@pytest.mark.slow  # ~65 s: a fine-tuning run then its retraining (make test-slow)
def test_retrain_check_reproduces_a_rounds_recorded_accuracy(tmp_path, capsys):
    """benchmarks/retrain.py trains and evaluates as the loop does: on a stored round, with the run's
    recipe, budget and seed, it prints the accuracy the run recorded for that round."""
    from benchmarks.retrain import main

    cfg = tiny(tmp_path, max_fraction=0.4)
    cfg.acquisition.strategies = ["random"]
    cfg.classifier.backend = "finetune"
    cfg.classifier.min_steps = cfg.classifier.max_steps = 20  # enough training that the accuracy depends on the seed
    cfg.classifier.learning_rate = 2e-4
    run_experiment(cfg, show_progress=False)
    recorded = {r["round"]: r["accuracy"] for r in read_results(tmp_path)}
    round_dir = LocalStore(tmp_path / "store").round_dir("random-seed0", 1)
    assert main([str(tmp_path / "recipe.yaml"), str(round_dir), "--seeds", "0", "1", "2"]) == 0
    printed = [float(l.split(" | ")[-1].rstrip(" %|")) / 100 for l in capsys.readouterr().out.strip().splitlines()[2:]]
    assert printed[0] == pytest.approx(recorded[1], abs=5e-5)  # printed to 0.01 %; one test row is 2 %
    # Another training seed gives another model, so the match above is not a constant.
    assert printed[1:] != [printed[0]] * 2, printed


def test_eval_order_is_by_length_and_stable():
    from datasets import Dataset

    from signal_hf.classifier import order_for_eval

    ds = Dataset.from_dict({"id": ["a", "b", "c", "d"], "text": ["xxx", "x", "yy", "zz"], "text_pair": ["", "xxxx", None, "q"]})
    # lengths 3, 5, 2, 3 → c (2), a (3), d (3, after a: stable), b (5)
    assert order_for_eval(ds)["id"][:] == ["c", "a", "d", "b"]
    assert order_for_eval(ds.remove_columns("text_pair"))["id"][:] == ["b", "c", "d", "a"]


def test_a_different_recipe_in_the_same_folder_is_refused(run, tmp_path):
    from signal_hf.errors import ConfigError

    out = tmp_path / "x"
    cfg = tiny(out)
    cfg.acquisition.strategies = ["random"]
    cfg.loop.max_fraction = 0.2
    run_experiment(cfg, show_progress=False)
    cfg.classifier.learning_rate = 1e-3
    with pytest.raises(ConfigError, match="different recipe"):
        run_experiment(cfg, show_progress=False)


def test_cli_plot_redraws(run, tmp_path):
    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("store", "work"))
    (copy / "learning_curves.png").unlink()
    proc = subprocess.run([sys.executable, "-m", "signal_hf", "plot", str(copy)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| random |" in proc.stdout
    assert (copy / "learning_curves.png").is_file()


def test_cli_plot_merges_runs_into_one_table(run, tmp_path):
    out, _ = run
    import json as _json

    other = tmp_path / "gen"
    other.mkdir()
    rows = [_json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
    with open(other / "results.jsonl", "w") as f:
        for r in rows:
            if r["method"] == "signal":
                f.write(_json.dumps({**r, "method": "signal-gen", "accuracy": 0.99}) + "\n")
    merged = tmp_path / "merged"
    proc = subprocess.run([sys.executable, "-m", "signal_hf", "plot", str(out), str(other), "--out", str(merged)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| signal-gen | 99.0 ± 0.0 |" in proc.stdout and "| random |" in proc.stdout
    assert (merged / "learning_curves.png").is_file()
    # The report folder keeps the raw rows of both runs, so it redraws on its own.
    assert read_results(merged) == sorted(read_results(out) + read_results(other), key=lambda r: (r["method"], r["seed"], r["round"]))
    table = proc.stdout.split("\nplot:")[0]
    (merged / "summary.md").unlink()
    proc = subprocess.run([sys.executable, "-m", "signal_hf", "plot", str(merged)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\nplot:")[0] == table and (merged / "summary.md").is_file()
    proc = subprocess.run([sys.executable, "-m", "signal_hf", "plot", str(out), str(out), "--out", str(merged)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "share (method, seed, round) rows" in proc.stderr


@pytest.mark.parametrize(
    "R, loop, expected",
    [
        # |R| = 105 (QNLI 0.1%): b = 10, 10 → 20 → 21 would report a 1-item round as "30%".
        (105, {"initial_fraction": 0.1, "step_fraction": 0.1, "max_fraction": 0.2}, [(10, 10), (20, 21)]),
        # |R| = 105 to 100%: the last round takes the remainder (15), not an extra "110%" round.
        (105, {"initial_fraction": 0.1, "step_fraction": 0.1, "max_fraction": 1.0}, [(10, 10)] + [(p, 10 * p // 10) for p in range(20, 100, 10)] + [(100, 105)]),
    ],
)
def test_round_schedule_reports_each_checkpoint_once(R, loop, expected):
    """The schedule alone, without a trial, data or a model."""
    from signal_hf.config import LoopConfig
    from signal_hf.loop import Schedule

    plan = Schedule.from_config(LoopConfig(seeds=[0], **loop), R, generative=False)
    labeled, schedule = plan.initial_size, [(plan.step_percent(0), plan.initial_size)]
    for r in range(1, plan.num_rounds + 1):
        labeled += plan.round_budget(r, labeled)
        schedule.append((plan.step_percent(r), labeled))
    assert schedule == expected


# ---------------------------------------------------------------- stopping criteria


def test_kappa_and_stopping_rules_hand_computed():
    import torch

    from signal_hf.loop.stopping import cohen_kappa, fired_criteria, normalised_entropy

    a, b = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1])
    # observed 3/4; expected 0.5·0.25 + 0.5·0.75 = 0.5 → κ = (0.75 − 0.5) / 0.5 = 0.5
    assert cohen_kappa(a, b, 2) == pytest.approx(0.5)
    assert cohen_kappa(a, a, 2) == 1.0 and cohen_kappa(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long), 2) == 1.0
    assert normalised_entropy(torch.tensor([[0.5, 0.5], [1.0, 0.0]])) == pytest.approx(0.5, abs=1e-6)
    rule = dict(kappa=0.9, window=2, max_uncertainty=0.2, max_labels=None)
    assert fired_criteria(["stabilizing_predictions", "kappa_average"], kappas=[0.95], uncertainty=0.5, labeled=5, **rule) == []  # window not full
    assert fired_criteria(["stabilizing_predictions", "kappa_average"], kappas=[0.1, 0.88, 0.93], uncertainty=0.5, labeled=5, **rule) == ["kappa_average"]
    assert fired_criteria(["stabilizing_predictions", "kappa_average"], kappas=[0.91, 0.95], uncertainty=0.5, labeled=5, **rule) == ["stabilizing_predictions", "kappa_average"]
    assert fired_criteria(["overall_uncertainty"], kappas=[], uncertainty=0.1, labeled=5, **rule) == ["overall_uncertainty"]
    assert fired_criteria(["max_labels"], kappas=[], uncertainty=0.5, labeled=14, **{**rule, "max_labels": 14}) == ["max_labels"]


def test_stop_when_ends_a_trial_early_and_resume_keeps_it_stopped(tmp_path):
    out = tmp_path / "run"
    cfg = config_from_dict({
        "name": "stops", "data": {"dataset": "sst2", "pool_fraction": 0.0005, "max_test_samples": 48},
        "classifier": {"backend": "probe", "max_length": 32},
        "acquisition": {"strategies": ["random", "entropy"], "k": 3},
        # |R| = 34, b = 7: round 1 reaches 14 labels, where the budget criterion must fire.
        "loop": {"seeds": [0], "initial_fraction": 0.2, "step_fraction": 0.2, "max_fraction": 1.0,
                 "stop_when": ["max_labels", "kappa_average"], "stop_max_labels": 14, "stop_window": 1},
        "output": {"output_dir": str(out)},
    })
    run_experiment(cfg, show_progress=False)
    rows = read_results(out)
    for m in ("random", "entropy"):
        mine = sorted((r for r in rows if r["method"] == m), key=lambda r: r["round"])
        assert [r["round"] for r in mine] == [0, 1]  # not the 5 rounds to 100 %
        assert "max_labels" in mine[1]["stopped_by"] and "stopped_by" not in mine[0]
        assert -1.0 <= mine[1]["stop_kappa"] <= 1.0 and mine[1]["stop_kappas"] == [mine[1]["stop_kappa"]]
        assert 0.0 <= mine[1]["stop_uncertainty"] <= 1.0
    summary = (out / "summary.md").read_text()
    assert "Stopped early (`loop.stop_when`):" in summary and "random seed 0: after round 1 (40 % of the pool, 14 labels) by " in summary
    run_experiment(cfg, show_progress=False)  # resumed: the stopped trials stay stopped
    assert len(read_results(out)) == len(rows)
