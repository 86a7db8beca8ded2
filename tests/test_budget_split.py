"""Budget split between real and synthetic candidates (loop.budget_split), on hand-made scores."""

from __future__ import annotations

import torch
from datasets import Dataset

from signal_hf.config import config_from_dict
from signal_hf.data import load_task
from signal_hf.loop import Trial, _Shared
from signal_hf.results import ResultsLog
from signal_hf.store import LocalStore
from signal_hf.types import AcquisitionState, PoolOutputs


def make_trial(tmp_path, split, share=0.5):
    cfg = config_from_dict(
        {
            "data": {"dataset": "sst2", "pool_fraction": 0.0005},
            "acquisition": {"strategies": ["entropy"]},
            "loop": {"seeds": [0], "budget_split": split, "synthetic_share": share},
            "generator": {"enabled": True},
            "output": {"output_dir": str(tmp_path)},
        }
    )
    task = load_task(cfg.data)
    trial = Trial(cfg, task, "entropy", 0, store=LocalStore(tmp_path / "s"), results=ResultsLog(tmp_path), shared=_Shared())
    trial.generative = True  # entropy never generates; force the generative budget logic
    return trial


def state_and_candidates():
    # Entropy ranks by p closeness to 0.5: synthetic rows 0-3 are the most uncertain.
    p1 = torch.tensor([0.5, 0.49, 0.48, 0.47, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95])
    probs = torch.stack([1 - p1, p1], 1)
    out = PoolOutputs(probs=probs, embeddings=torch.nn.functional.normalize(torch.randn(10, 4), dim=-1))
    lab = PoolOutputs(probs=probs[:2], embeddings=out.embeddings[:2])
    sources = ["synthetic"] * 4 + ["real"] * 6
    cands = Dataset.from_dict({"id": [f"c{i}" for i in range(10)], "text": ["t"] * 10, "label": [-1] * 10, "source": sources})
    return AcquisitionState(unlabeled=out, labeled=lab, seed=0), cands


def test_free_takes_the_global_top_b(tmp_path):
    trial = make_trial(tmp_path, "free")
    state, cands = state_and_candidates()
    picked, _ = trial._select(state, cands, 4)
    assert picked == [0, 1, 2, 3]


def test_fixed_share_splits_the_budget(tmp_path):
    trial = make_trial(tmp_path, "fixed", share=0.25)
    state, cands = state_and_candidates()
    picked, info = trial._select(state, cands, 4)
    # 1 synthetic (the best one), 3 real (the best real ones: rows 4, 5, 6).
    assert picked == [0, 4, 5, 6]
    assert info["free_synthetic_share"] == 1.0 and info["synthetic_share_used"] == 0.25
    assert trial._synthetic_share == 0.25  # fixed never moves


def test_adaptive_share_follows_the_generator(tmp_path):
    trial = make_trial(tmp_path, "adaptive", share=0.25)
    state, cands = state_and_candidates()
    first, _ = trial._select(state, cands, 4)
    assert first == [0, 4, 5, 6]
    # Under free competition all of the top 4 were synthetic: the next round shifts to synthetic.
    assert trial._synthetic_share == 1.0
    second, info = trial._select(state, cands, 4)
    assert second == [0, 1, 2, 3] and info["synthetic_share_used"] == 1.0
