"""The full SIGnAL loop on real small models: generate → acquire from R ∪ S → annotate → retrain →
RL on the acquisition reward, with every round's adapter saved as a revision."""

from __future__ import annotations

import json

import pytest

from signal_hf.annotator import train_annotator
from signal_hf.config import config_from_dict
from signal_hf.loop import derive_seed, run_experiment
from signal_hf.results import read_results
from signal_hf.store import LocalStore

pytestmark = pytest.mark.generator


def signal_cfg(out, annotator, **over):
    raw = {
        "name": "tiny-signal",
        "data": {"dataset": "sst2", "pool_fraction": 0.0005, "max_test_samples": 32},  # |R| = 34
        "classifier": {"max_steps": 3, "max_length": 32, "per_device_train_batch_size": 8},
        "acquisition": {"strategies": ["signal"], "k": 3},
        "loop": {"seeds": [0], "initial_fraction": 0.2, "step_fraction": 0.2, "max_fraction": 0.4, "signal_max_fraction": 0.6, "budget_split": "fixed", "synthetic_share": 0.5},
        "generator": {"enabled": True, "model_name_or_path": "bundled:smollm2-135m", "max_new_tokens": 16, "candidates_per_round": 1.0, "batch_size": 8, "min_words": 2},
        "oracle": {"synthetic": "model", "annotator_path": str(annotator)},
        "rl": {"enabled": True, "algorithm": "grpo", "steps_per_round": 1, "num_generations": 2, "prompts_per_step": 2, "learning_rate": 1e-3, "probe_prompts": 4},
        "output": {"output_dir": str(out)},
    }
    for k, v in over.items():
        raw[k].update(v)
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def signal_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("signal")
    cfg = signal_cfg(base / "run", base / "annotator")
    path, acc = train_annotator(cfg, max_train_samples=64, epochs=1)
    assert 0.0 <= acc <= 1.0 and (path / "annotator.json").is_file()
    info = json.loads((path / "annotator.json").read_text())
    # The protocol's budget: 1 epoch of 64 rows at batch 32 is 2 steps, floored at min_steps (100),
    # capped at the recipe's max_steps (3); evaluated on the whole test split, next to the paper's.
    assert (info["steps"], info["train_rows"], info["test_rows"], info["paper_test_accuracy"]) == (3, 64, 32, 0.913)
    assert info["test_accuracy"] == acc
    run_experiment(cfg, show_progress=False)
    return cfg, base / "run"


def test_rounds_generate_acquire_and_self_inform(signal_run):
    cfg, out = signal_run
    rows = {r["round"]: r for r in read_results(out)}
    assert sorted(rows) == [0, 1, 2] and rows[2]["method"] == "signal-gen"
    assert [rows[r]["labeled"] for r in range(3)] == [7, 14, 20]
    # The last round takes the remainder, not b: ``acquired`` says how many were labeled.
    assert [rows[r]["acquired"] for r in (1, 2)] == [7, 6] and rows[2]["budget"] == 7
    for r in (1, 2):
        row = rows[r]
        assert row["generated"] == row["kept"] + row["dropped"] == 7
        assert row["generated"] == row["kept"] + sum(row["dropped_by_reason"].values())
        assert "rl_reward_mean" in row and "rl_kl" in row and row["rl_kl"] == row["rl_kl"]  # finite
    # Fixed split with share 0.5: when synthetic candidates exist, about half of b is synthetic.
    assert any(rows[r]["acquired_synthetic"] > 0 for r in (1, 2))
    store = LocalStore(out / "store")
    rec = store.load_round("signal-gen-seed0", 2)
    syn = rec.datasets["synthetic_pool"]
    assert set(syn["round"][:]) <= {1, 2} and all(p for p in syn["prompt"][:])
    lab = rec.datasets["labeled"]
    syn_labels = [l for l, s in zip(lab["label"][:], lab["source"][:]) if s == "synthetic"]
    assert syn_labels and all(l in (0, 1) for l in syn_labels)
    # Synthetic rows record the adapter revision that wrote them.
    assert set(syn.filter(lambda r: r["round"] == 2)["generator_revision"][:]) == {"signal-gen-seed0-round-1"}


def test_adapter_changes_every_round_and_old_revision_reproduces_generations(signal_run):
    from signal_hf.generation import Generator

    cfg, out = signal_run
    store = LocalStore(out / "store")
    blobs = [(store.load_round("signal-gen-seed0", r).adapter_path / "adapter_model.safetensors").read_bytes() for r in range(3)]
    assert blobs[0] != blobs[1] != blobs[2]
    # Round 2 generated with the adapter saved at round 1 and seed (0, 2, "generate").
    r1 = store.load_round("signal-gen-seed0", 1)
    gen = Generator.from_pretrained(cfg.generator.model_name_or_path, task=r1_task(cfg), config=cfg.generator, adapter=r1.adapter_path)
    gen.revision = r1.revision
    real, syn, lab = r1.datasets["real_pool"], r1.datasets["synthetic_pool"], r1.datasets["labeled"]
    existing = real["text"][:] + syn["text"][:] + lab["text"][:]
    new, stats = gen.generate(real, 7, round_idx=2, seed=derive_seed(0, 2, "generate"), existing_texts=existing)
    saved = store.load_round("signal-gen-seed0", 2).datasets["synthetic_pool"].filter(lambda r: r["round"] == 2)
    assert new["text"][:] == saved["text"][:]
    assert new["id"][:] == saved["id"][:]


def r1_task(cfg):
    from signal_hf.data import load_task

    return load_task(cfg.data).spec


# Slow (~2 min on 2 cores): a second generative loop. The split's names and errors stay in the default suite
# (tests/test_config.py), its arithmetic in tests/test_budget_split.py.
@pytest.mark.slow
def test_budget_split_ablation_runs_beside_the_recipes_split(signal_run, tmp_path):
    """``signal-gen-norl-free`` beside ``signal-gen-norl`` (the recipe's ``fixed`` 0.5): same seed, own names,
    own store runs, and each method acquires by its own split."""
    cfg, _ = signal_run
    ablation = signal_cfg(tmp_path / "run", cfg.oracle.annotator_path, acquisition={"strategies": ["signal-gen-norl", "signal-gen-norl-free"]}, rl={"enabled": False})
    run_experiment(ablation, show_progress=False)
    rows = [r for r in read_results(tmp_path / "run") if r["round"] > 0]
    assert {r["method"] for r in rows} == {"signal-gen-norl", "signal-gen-norl-free"}
    for r in rows:
        if r["method"] == "signal-gen-norl":  # fixed: half of each round's budget from S
            assert r["synthetic_share_used"] == 0.5
            assert r["acquired_synthetic"] == round(0.5 * r["acquired"])
        else:  # free: the top-b of U, no share
            assert "synthetic_share_used" not in r and "free_synthetic_share" not in r
    assert {"signal-gen-norl-seed0", "signal-gen-norl-free-seed0"} <= set(LocalStore(tmp_path / "run" / "store").runs())
