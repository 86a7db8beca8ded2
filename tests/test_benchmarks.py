"""Smoke tests of the benchmark code paths at tiny sizes: the outputs must be consistent (no timing
assertions). Our CAL on small-text's neighbour set must select exactly what small-text selects."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# benchmarks/ is a top-level package of the repository, not installed: `pytest` (unlike
# `python -m pytest`) does not put the repository root on sys.path.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks.acquisition import IMPLEMENTATIONS, make_inputs, run_acquisition, small_text_available  # noqa: E402
from benchmarks.common import PeakRSS, measure  # noqa: E402
from benchmarks.rounds import PhaseRecorder  # noqa: E402

needs_small_text = pytest.mark.skipif(not small_text_available(), reason="small-text is a bench-only extra (pip install 'signal_hf[bench]')")


# ---------------------------------------------------------------- inputs and helpers


def test_make_inputs_is_a_consistent_seeded_pool():
    a = make_inputs(50, 7, 3, dim=12, seed=4)
    b = make_inputs(50, 7, 3, dim=12, seed=4)
    assert (a.n_pool, a.n_labeled, a.num_classes, a.dim) == (50, 7, 3, 12)
    assert torch.equal(a.probs_u, b.probs_u) and torch.equal(a.hidden_l, b.hidden_l)
    for p in (a.probs_u, a.probs_l):
        assert torch.allclose(p.sum(1), torch.ones(len(p)), atol=1e-6)
    assert torch.allclose(a.emb_u, torch.nn.functional.normalize(a.hidden_u, dim=1))
    assert torch.allclose(a.emb_l.norm(dim=1), torch.ones(7), atol=1e-6)
    assert not torch.equal(make_inputs(50, 7, 3, dim=12, seed=5).probs_u, a.probs_u)
    with pytest.raises(ValueError, match="num_classes"):
        make_inputs(10, 2, 1)


def test_measure_reports_time_and_a_peak_that_sees_a_large_allocation():
    # In a fresh process: a long test session keeps freed memory resident, which a new allocation
    # may reuse without raising RSS (the benchmarks run in their own process too).
    import subprocess
    import sys

    code = (
        "import torch; from benchmarks.common import measure; "
        "got = measure(lambda: torch.ones(64 * 2**20 // 4).sum()); "
        "print(float(got.result), got.seconds, got.cpu_seconds, got.peak_bytes)"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result, seconds, cpu, peak = proc.stdout.split()
    assert float(result) == 64 * 2**20 // 4
    assert float(seconds) > 0 and float(cpu) >= 0
    if peak != "None":  # Linux: /proc/self/clear_refs
        assert int(peak) >= 48 * 2**20
    with PeakRSS() as small:
        sum(range(10))
    if small.peak_bytes is not None:
        assert small.peak_bytes < 16 * 2**20


def test_phase_recorder_keeps_nested_inference_apart_and_splits_rounds():
    rec = PhaseRecorder()
    work = rec.timed("inference", lambda x: x + 1)
    assert work(1) == 2
    with rec.span("training"):
        pass
    rec.round = 1
    with rec.span("generation") as extra:
        extra["tokens"] = 12
    with rec.span("RL step"):
        work(2)
        work(3)
    work(4)
    rounds = rec.by_round()
    assert set(rounds) == {0, 1}
    assert rounds[0]["inference"]["calls"] == 1 and rounds[0]["training"]["calls"] == 1
    assert rounds[1]["inference"]["calls"] == 1  # the top-level call only
    assert rounds[1]["RL inference"]["calls"] == 2  # the two calls inside the RL step
    assert rounds[1]["generation"]["tokens"] == 12
    assert rounds[1]["RL step"]["seconds"] >= rounds[1]["RL inference"]["seconds"]


# ---------------------------------------------------------------- acquisition


def _small_text_cal_scores(inp, k: int) -> np.ndarray:
    """small-text 1.4.1's CAL score written out with numpy: neighbours among unlabeled ∪ labeled
    (self included), mean of rel_entr(p_neighbour, p_candidate) over neighbours and classes."""
    e = torch.cat([inp.emb_u, inp.emb_l]).double().numpy()
    p = torch.cat([inp.probs_u, inp.probs_l]).double().numpy()
    d = ((e[: inp.n_pool, None, :] - e[None, :, :]) ** 2).sum(-1)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]
    pu = p[: inp.n_pool]
    rel = p[nn] * (np.log(p[nn]) - np.log(pu[:, None, :]))
    return rel.mean(axis=(1, 2))


@pytest.mark.parametrize("C", [2, 3])
def test_like_for_like_cal_selects_the_top_of_small_texts_formula(C):
    inp = make_inputs(120, 15, C, dim=8, seed=C)
    ref = _small_text_cal_scores(inp, k=5)
    picked = IMPLEMENTATIONS["cal_union"].fn(inp, 10, 5, 0)
    assert sorted(picked.tolist()) == sorted(np.argsort(-ref, kind="stable")[:10].tolist())


@needs_small_text
@pytest.mark.parametrize("C", [2, 4])
@pytest.mark.parametrize("n", [5, 40])
def test_small_text_cal_and_ours_like_for_like_select_the_same_rows(C, n):
    inp = make_inputs(300, 30, C, dim=16, seed=n + C)
    ours = IMPLEMENTATIONS["cal_union"].fn(inp, n, 10, 0)
    theirs = IMPLEMENTATIONS["st_cal"].fn(inp, n, 10, 0)
    assert sorted(ours.tolist()) == sorted(theirs.tolist())
    # ...while the reference CAL (labeled neighbours only) is a different algorithm.
    reference = IMPLEMENTATIONS["cal"].fn(inp, n, 10, 0)
    assert len(reference) == n and len(set(reference.tolist())) == n


@needs_small_text
def test_small_text_badge_runs_on_the_shims():
    inp = make_inputs(200, 20, 4, dim=16, seed=1)
    picked = IMPLEMENTATIONS["st_badge"].fn(inp, 12, 10, 0)
    assert len(set(picked.tolist())) == 12 and picked.min() >= 0 and picked.max() < 200


def test_run_acquisition_rows_are_consistent():
    methods = ["signal", "cal", "cal_union", "badge"] + (["st_cal", "st_badge"] if small_text_available() else [])
    rep = run_acquisition([150, 400], [2, 4], dim=16, n_query=12, k=5, repeats=2, slow_s=1e9, methods=methods,
                          large_pool=150)
    rows = rep["results"]
    # above large_pool: no cal_union, small-text for the first class count only
    n_st = len(methods) - 4
    assert len(rows) == 2 * len(methods) + (len(methods) - 1) + (len(methods) - 1 - n_st)
    big = [r for r in rows if r["pool"] == 400]
    assert not any(r["method"] == "cal_union" for r in big)
    assert not any(r["side"] == "small-text" and r["classes"] == 4 for r in big)
    for r in rows:
        assert r["runs"] == 2 and len(r["seconds"]) == 2
        assert r["min_s"] <= r["median_s"] <= max(r["seconds"])
        assert r["selected"] == 12 and r["distinct"] == 12
        assert r["labeled"] == round(0.1 * r["pool"])
    for c in rep["comparisons"]:
        if c["theirs"] is None:
            assert c["speedup"] is None and c["overlap"] is None
            continue
        assert math.isclose(c["speedup"], c["theirs_s"] / c["ours_s"])
        if c["must_match"]:
            assert c["overlap"] == 1.0
    labels = {c["comparison"] for c in rep["comparisons"]}
    assert "SIGnAL" in labels and "BADGE" in labels


def test_run_acquisition_rejects_unknown_methods():
    with pytest.raises(ValueError, match="unknown"):
        run_acquisition([50], [2], methods=["signal", "nope"])


def test_cli_quick_acquisition_writes_the_json(tmp_path):
    from benchmarks.run import main

    rep = main(["--quick", "--sections", "acquisition", "--out", str(tmp_path), "--threads", "1",
                "--sizes", "120", "--classes", "2", "--dim", "8", "--repeats", "1"])
    saved = json.loads((tmp_path / "latest.json").read_text())
    assert saved["settings"]["sizes"] == [120] and saved["machine"]["threads"] == 1
    assert saved["machine"]["versions"]["torch"] and saved["machine"]["cores_available"] >= 1
    assert len(saved["sections"]["acquisition"]["results"]) == len(rep["sections"]["acquisition"]["results"]) > 0
    assert list(tmp_path.glob("bench-*.json"))


# ---------------------------------------------------------------- rounds and generation (real models)


def test_one_pool_based_round_is_timed_phase_by_phase(tmp_path):
    from signal_hf.classifier import ProbeClassifier

    from benchmarks.rounds import run_rounds

    original_fit = ProbeClassifier.fit
    rep = run_rounds(["recipes/demo.yaml"], [0.001], out_dir=tmp_path, max_test_samples=16,
                     extra_overrides=["--classifier.model_name_or_path=bundled:minilm"])
    assert ProbeClassifier.fit is original_fit  # the wrappers are removed again
    (run,) = rep["runs"]
    assert (run["pool"], run["initial_labeled"], run["budget"]) == (67, 7, 7)
    assert [row["round"] for row in run["rows"]] == [0, 1]  # exactly one round after round 0
    assert run["rows"][1]["labeled"] == 14
    r0, r1 = run["phases"]["0"], run["phases"]["1"]
    for phase in ("training", "evaluation", "inference", "store write"):
        assert r0[phase]["calls"] == 1 and r1[phase]["calls"] == 1
    assert "acquisition" not in r0 and r1["acquisition"]["seconds"] == run["rows"][1]["acquire_s"]
    assert "generation" not in r1 and "RL step" not in r1
    # the loop's train_s = building the classifier (encoder load) + the fit
    setup = r1["classifier setup"]["seconds"]
    assert setup >= 0 and math.isclose(setup + r1["training"]["seconds"], run["rows"][1]["train_s"], rel_tol=1e-9)


@pytest.mark.generator
def test_generation_throughput_compares_paths_against_the_gemm_bound(tmp_path):
    from benchmarks.generation import PATHS, run_generation

    rep = run_generation(["bundled:smollm2-135m"], batch_sizes=[2], n_prompts=2, passes=1, max_new_tokens=4, bound_repeats=1)
    rows = rep["rows"]
    assert [r["path"] for r in rows] == list(PATHS)
    bound = rep["bounds"]["bundled:smollm2-135m"]
    # SmolLM2-135M: 30 layers × 7 projections + the output layer (+ LoRA q/v A, B matrices)
    assert bound["flops_per_token"] > 2 * 100e6 and bound["per_batch"][2]["tokens_per_s"] > 0
    for r in rows:
        # every completion has 1..4 new tokens
        assert 2 <= r["tokens"] <= 2 * 4
        assert r["tokens_per_s"] == pytest.approx(r["tokens"] / r["best_seconds"])
        assert r["of_bound"] == pytest.approx(r["tokens_per_s"] / bound["per_batch"][2]["tokens_per_s"])
    assert rows[0]["vs_first_path"] == 1.0


@pytest.mark.generator
def test_rl_rollouts_times_both_paths_on_the_same_steps():
    from benchmarks.rl_rollouts import ROLLOUT_PATHS, run_rl_rollouts

    rep = run_rl_rollouts(["bundled:smollm2-135m"], steps=1, prompts_per_step=1, num_generations=2, passes=1, max_new_tokens=4)
    rows = rep["rows"]
    assert [r["path"] for r in rows] == list(ROLLOUT_PATHS)
    for r in rows:
        assert r["seconds_per_step"] > 0 and r["completions_per_step"] == 2
        assert 1 <= r["mean_completion_length"] <= 4  # TRL's own count of the rollouts it trained on
    assert rows[0]["speedup"] == 1.0
    assert rows[1]["speedup"] == pytest.approx(rows[0]["seconds_per_step"] / rows[1]["seconds_per_step"])


@pytest.mark.generator
def test_instrument_times_generation_and_dedup_of_a_real_generator():
    from signal_hf.config import load_recipe
    from signal_hf.data import load_task, sample_pool
    from signal_hf.generation import Generator

    from benchmarks.rounds import instrument

    cfg = load_recipe("recipes/demo_signal.yaml", ["--generator.max_new_tokens=6", "--generator.keep_truncated=true"])
    task = load_task(cfg.data)
    pool = sample_pool(task, 0.001, 0)
    original = Generator.sample
    rec = PhaseRecorder()
    with instrument(rec):
        gen = Generator.from_pretrained("bundled:smollm2-135m", task=task.spec, config=cfg.generator)
        _, stats = gen.generate(pool, 3, round_idx=1, seed=0, existing_texts=[])
    assert Generator.sample is original
    phases = rec.by_round()[0]
    assert phases["generator load"]["calls"] == 1
    assert phases["generation"]["completions"] == 3
    assert 3 <= phases["generation"]["tokens"] <= 3 * 6
    assert phases["dedup/filter"]["candidates"] == 3 and phases["dedup/filter"]["kept"] == stats.kept


# ---------------------------------------------------------------- retraining check


@pytest.mark.slow  # ~40 s of fine-tuning (make test-slow)
def test_retrain_reads_stored_rounds_and_filters_sources(tmp_path, capsys):
    # That it reproduces the loop's own training and evaluation is checked against a real run in
    # tests/test_loop.py::test_retrain_check_reproduces_a_rounds_recorded_accuracy.
    from benchmarks.retrain import load_labeled, main, parse_budget
    from signal_hf.config import load_recipe
    from signal_hf.data import load_task
    from signal_hf.errors import ConfigError, DataError
    from signal_hf.store import LocalStore

    overrides = ["--data.max_test_samples=40"]
    cfg = load_recipe("recipes/demo.yaml", overrides)
    task = load_task(cfg.data)
    rows = task.train.select(range(24))
    rows = rows.remove_columns([c for c in rows.column_names if c not in ("id", "text", "label")])
    rows = rows.add_column("source", ["real"] * 16 + ["synthetic"] * 8).shuffle(seed=3)  # stored order ≠ id order
    # A real round of a run's store, as the loop writes it.
    store = LocalStore(tmp_path / "store")
    store.save_round("random-seed0", 3, datasets={"labeled": rows}, state={"round": 3})
    round_dir = store.round_dir("random-seed0", 3)

    assert load_labeled(round_dir)["id"] == sorted(rows["id"])
    real = load_labeled(round_dir, "real")
    assert len(real) == 16 and set(real["source"]) == {"real"}
    assert main(["recipes/demo.yaml", str(round_dir), "--budget", "steps:1", "--budget", "epochs:0.5", "--source", "real", "--seeds", "0", *overrides]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert [l.split(" | ")[1:4] for l in out[2:]] == [["16", "0", "steps:1"], ["16", "0", "epochs:0.5"]]
    assert all(0.0 <= float(l.split(" | ")[-1].rstrip(" %|")) <= 100.0 for l in out[2:])

    assert parse_budget("epochs:2") == {"backend": "finetune", "min_steps": 0, "max_steps": -1, "num_train_epochs": 2.0}
    with pytest.raises(ConfigError, match="--budget"):
        parse_budget("weeks:2")
    with pytest.raises(DataError, match="round folder"):
        load_labeled(tmp_path / "nowhere")
