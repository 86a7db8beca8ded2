"""Budget split between real and synthetic candidates (loop.budget_split), on hand-made scores:
the pure function, without a trial or a model."""

from __future__ import annotations

import torch
from datasets import Dataset

from signal_hf.acquisition import get_strategy
from signal_hf.acquisition.budget import split_budget
from signal_hf.types import AcquisitionState, PoolOutputs

ENTROPY = get_strategy("entropy")


def state_and_candidates():
    # Entropy ranks by p closeness to 0.5: synthetic rows 0-3 are the most uncertain.
    p1 = torch.tensor([0.5, 0.49, 0.48, 0.47, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95])
    probs = torch.stack([1 - p1, p1], 1)
    out = PoolOutputs(probs=probs, embeddings=torch.nn.functional.normalize(torch.randn(10, 4), dim=-1))
    lab = PoolOutputs(probs=probs[:2], embeddings=out.embeddings[:2])
    sources = ["synthetic"] * 4 + ["real"] * 6
    cands = Dataset.from_dict({"id": [f"c{i}" for i in range(10)], "text": ["t"] * 10, "label": [-1] * 10, "source": sources})
    return AcquisitionState(unlabeled=out, labeled=lab, seed=0), cands


def test_free_takes_the_global_top_b():
    state, cands = state_and_candidates()
    split = split_budget(ENTROPY, state, cands["source"][:], 4, mode="free", share=0.5)
    assert split.picked == [0, 1, 2, 3] and split.next_share == 0.5 and split.info == {}
    want = ENTROPY.scores(state)[:4].tolist()
    assert split.scores == want  # each pick's own score, in pick order


def test_fixed_share_splits_the_budget():
    state, cands = state_and_candidates()
    split = split_budget(ENTROPY, state, cands["source"][:], 4, mode="fixed", share=0.25)
    # 1 synthetic (the best one), 3 real (the best real ones: rows 4, 5, 6).
    assert split.picked == [0, 4, 5, 6]
    assert split.info["free_synthetic_share"] == 1.0 and split.info["synthetic_share_used"] == 0.25
    assert split.next_share == 0.25  # fixed never moves


def test_fixed_share_rounds_half_up_at_every_budget():
    # share 0.5 of an odd budget: ceil(n/2) from S for n = 1, 3, 5 (Python's round gives 0, 2, 2).
    state, cands = state_and_candidates()
    sources = cands["source"][:]
    for n, want_syn in ((1, 1), (3, 2), (5, 3), (4, 2)):
        picked = split_budget(ENTROPY, state, sources, n, mode="fixed", share=0.5).picked
        assert len(picked) == n and sum(sources[i] == "synthetic" for i in picked) == want_syn, n


def test_adaptive_share_follows_the_generator():
    state, cands = state_and_candidates()
    first = split_budget(ENTROPY, state, cands["source"][:], 4, mode="adaptive", share=0.25)
    assert first.picked == [0, 4, 5, 6]
    # Under free competition all of the top 4 were synthetic: the next round shifts to synthetic.
    assert first.next_share == 1.0
    second = split_budget(ENTROPY, state, cands["source"][:], 4, mode="adaptive", share=first.next_share)
    assert second.picked == [0, 1, 2, 3] and second.info["synthetic_share_used"] == 1.0


def test_without_synthetic_candidates_every_mode_is_free():
    state, cands = state_and_candidates()
    real_only = ["real"] * 10
    for mode in ("free", "fixed", "adaptive"):
        split = split_budget(ENTROPY, state, real_only, 4, mode=mode, share=0.25)
        assert split.picked == [0, 1, 2, 3] and split.next_share == 0.25
