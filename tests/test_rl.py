"""Self-informed RL of the generator: PPO maths, the acquisition reward, and GRPO / RLOO / PPO rounds."""

from __future__ import annotations

import math

import pytest
import torch

from signal_hf.errors import ConfigError, GenerationError, StrategyError
from signal_hf.acquisition.config import AcquisitionConfig
from signal_hf.rl import AcquisitionReward, RLConfig, optimize_generator
from signal_hf.rl.ppo_trainer import (
    clipped_surrogate_loss,
    clipped_value_loss,
    compute_gae,
    masked_whiten,
    token_level_rewards,
)
from signal_hf.tracking import Tracker
from signal_hf.types import PoolOutputs


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The test machine's 2 cores are shared: two torch threads spin against other processes and run
    # ~8x slower than one. Restored afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- PPO maths (hand cases)


def test_compute_gae_hand_case_with_padding():
    gamma, lam = 0.9, 0.8
    # Row 0: two completion tokens then padding; the padding's reward 5 and value 9 must be ignored.
    #   t=1: δ1 = r1 + γ·V2(=0, padding) − V1 = 1 + 0 − 0.2 = 0.8 ;            A1 = 0.8
    #   t=0: δ0 = r0 + γ·V1 − V0 = 0 + 0.9·0.2 − 0.5 = −0.32 ;                A0 = −0.32 + γλ·A1 = −0.32 + 0.72·0.8 = 0.256
    #   returns = A + V = [0.756, 1.0, 0]
    # Row 1: three tokens.
    #   t=2: δ2 = 2 + 0 − 0.5 = 1.5 ;                                           A2 = 1.5
    #   t=1: δ1 = 0 + 0.9·0.5 − 1 = −0.55 ;                                     A1 = −0.55 + 0.72·1.5 = 0.53
    #   t=0: δ0 = 1 + 0.9·1 − 0 = 1.9 ;                                         A0 = 1.9 + 0.72·0.53 = 2.2816
    #   returns = [2.2816, 1.53, 2.0]
    rewards = torch.tensor([[0.0, 1.0, 5.0], [1.0, 0.0, 2.0]])
    values = torch.tensor([[0.5, 0.2, 9.0], [0.0, 1.0, 0.5]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    adv, ret = compute_gae(rewards, values, mask, gamma, lam)
    torch.testing.assert_close(adv, torch.tensor([[0.256, 0.8, 0.0], [2.2816, 0.53, 1.5]]))
    torch.testing.assert_close(ret, torch.tensor([[0.756, 1.0, 0.0], [2.2816, 1.53, 2.0]]))


def test_clipped_surrogate_hand_case():
    # ε = 0.2, old log-prob 0, so ρ = exp(new):
    #   ρ=1.5, A=+1: max(−1.5, −1.2) = −1.2 (clipped)   ρ=0.5, A=+1: max(−0.5, −0.8) = −0.5
    #   ρ=1.5, A=−1: max( 1.5,  1.2) =  1.5             ρ=0.5, A=−1: max( 0.5,  0.8) =  0.8 (clipped)
    #   mean = (−1.2 − 0.5 + 1.5 + 0.8) / 4 = 0.15 ; clip fraction = 2/4. The 5th token is padding.
    new = torch.log(torch.tensor([[1.5, 0.5, 1.5, 0.5, 100.0]]))
    old = torch.zeros(1, 5)
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, 50.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    loss, frac = clipped_surrogate_loss(new, old, adv, mask, 0.2)
    assert loss.item() == pytest.approx(0.15, abs=1e-6)
    assert frac.item() == pytest.approx(0.5)


def test_clipped_value_loss_hand_case():
    # ε = 0.2:
    #   V=1, V_old=0.5, R=2: clipped V = 0.7 ; max((1−2)², (0.7−2)²) = max(1, 1.69) = 1.69 (clipped)
    #   V=0, V_old=0.5, R=1: clipped V = 0.3 ; max((0−1)², (0.3−1)²) = max(1, 0.49) = 1
    #   V=2, V_old=2,   R=0: max(4, 4) = 4
    #   loss = 0.5 · (1.69 + 1 + 4) / 3 = 1.115 ; clip fraction 1/3 (4th position is padding)
    values = torch.tensor([[1.0, 0.0, 2.0, 7.0]])
    old = torch.tensor([[0.5, 0.5, 2.0, -7.0]])
    returns = torch.tensor([[2.0, 1.0, 0.0, 3.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    loss, frac = clipped_value_loss(values, old, returns, mask, 0.2)
    assert loss.item() == pytest.approx(1.115, abs=1e-6)
    assert frac.item() == pytest.approx(1 / 3)


def test_token_level_rewards_put_score_on_last_token_and_penalise_kl():
    # β = 0.5; kl = (logπ − logπ_ref)·mask: row0 [0.5, 0, −1], row1 [0.5, 0.5, 0 (padding)]
    # rewards = −β·kl, plus the score on the last valid token: row0 [−0.25, 0, 0.5 + 2], row1 [−0.25, −0.25 − 1, 0]
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, 0.0]])
    ref = torch.tensor([[-1.5, -2.0, -2.0], [-1.0, -1.0, -4.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    rewards, kl = token_level_rewards(torch.tensor([2.0, -1.0]), logp, ref, mask, beta=0.5)
    torch.testing.assert_close(kl, torch.tensor([[0.5, 0.0, -1.0], [0.5, 0.5, 0.0]]))
    torch.testing.assert_close(rewards, torch.tensor([[-0.25, 0.0, 2.5], [-0.25, -1.25, 0.0]]))


def test_masked_whiten():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 100.0, -50.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    w = masked_whiten(x, mask)
    valid = w[mask.bool()]
    assert valid.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert valid.std(correction=0).item() == pytest.approx(1.0, abs=1e-4)
    assert w[1, 1].item() == 0.0 and w[1, 2].item() == 0.0
    # values 1..4 have mean 2.5, population std sqrt(1.25)
    assert w[0, 0].item() == pytest.approx((1 - 2.5) / math.sqrt(1.25), abs=1e-4)


# ----------------------------------------------------------------------------- acquisition reward


class MiniLMScorer:
    """A real score_fn: MiniLM mean-pooled embeddings (L2-normalised) and a seeded random softmax head."""

    def __init__(self):
        from transformers import AutoModel, AutoTokenizer

        from signal_hf.bundled import resolve_model_path

        path = resolve_model_path("bundled:minilm")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path).eval()
        gen = torch.Generator().manual_seed(0)
        self.head = torch.randn(self.encoder.config.hidden_size, 3, generator=gen) * 3.0
        self.calls: list[list[dict]] = []

    @torch.no_grad()
    def __call__(self, items: list[dict]) -> PoolOutputs:
        self.calls.append(list(items))
        texts = [it["text"] for it in items]
        pairs = [it["text_pair"] for it in items] if "text_pair" in items[0] else None
        enc = self.tokenizer(texts, pairs, padding=True, truncation=True, return_tensors="pt")
        hidden = self.encoder(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        emb = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)
        return PoolOutputs(probs=torch.softmax(emb @ self.head, -1), embeddings=emb)


def _parse(texts):
    return [_validity(t) for t in texts]


def _validity(text: str):
    text = text.strip()
    if not text:
        return None, "empty"
    if "BAD" in text:
        return None, "malformed"
    return {"text": text}, None


def _brute_force_signal(q: PoolOutputs, ref: PoolOutputs, k: int, eps: float) -> torch.Tensor:
    """s_i = 1/k Σ_{j ∈ kNN(i)} KL(p_i ‖ p_j) / max(‖Φ_i − Φ_j‖, eps), written out directly."""
    out = []
    for p_i, e_i in zip(q.probs.double(), q.embeddings.double()):
        d = (ref.embeddings.double() - e_i).norm(dim=1)
        nn_idx = d.argsort()[:k]
        kls = (p_i * (p_i.log() - ref.probs.double()[nn_idx].log())).sum(1)
        out.append((kls / d[nn_idx].clamp_min(eps)).mean())
    return torch.stack(out).float()


@pytest.fixture(scope="module")
def scorer():
    return MiniLMScorer()


@pytest.fixture(scope="module")
def reference(scorer):
    labeled = ["a wonderful film", "the worst movie ever", "stocks rallied today", "the team won the final",
               "a dull, lifeless script", "brilliant performances all round"]
    out = scorer([{"text": t} for t in labeled])
    scorer.calls.clear()
    return out


COMPLETIONS = ["an unexpectedly moving story", "", "BAD output {", "the plot drags in the middle",
               "   ", "markets fell sharply", "a joyful, funny ride"]
VALID = [0, 3, 5, 6]


def test_reward_invalid_get_penalty_valid_get_signal_score(scorer, reference):
    from signal_hf.acquisition import signal_scores

    reward = AcquisitionReward(scorer, reference, parse_fn=_parse, acquisition=AcquisitionConfig(k=3, eps=1e-4), rl=RLConfig(invalid_penalty=-2.5, reward_normalization="none"))
    scorer.calls.clear()
    out = reward(prompts=["p"] * len(COMPLETIONS), completions=COMPLETIONS)
    assert len(out) == len(COMPLETIONS)
    # One batched classifier call with exactly the valid completions, in order.
    assert len(scorer.calls) == 1
    assert [it["text"] for it in scorer.calls[0]] == [COMPLETIONS[i].strip() for i in VALID]
    for i in set(range(len(COMPLETIONS))) - set(VALID):
        assert out[i] == -2.5
    q = scorer([{"text": COMPLETIONS[i].strip()} for i in VALID])
    direct = signal_scores(q.probs, q.embeddings, reference.probs, reference.embeddings, k=3, eps=1e-4)
    got = torch.tensor([out[i] for i in VALID])
    torch.testing.assert_close(got, direct.float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got, _brute_force_signal(q, reference, 3, 1e-4), rtol=1e-4, atol=1e-6)
    assert bool((got > 0).all())  # a random head gives distinct distributions → positive KL
    stats = reward.last_stats
    assert stats["valid"] == 4 and stats["total"] == 7
    assert stats["drop_reasons"] == {"empty": 2, "malformed": 1}
    assert stats["raw_reward_mean"] == pytest.approx(float(direct.mean()), rel=1e-5)


def test_reward_honours_the_neighbour_set_like_the_acquisition(scorer, reference):
    """``acquisition.neighbours: all``: a completion's neighbours are L and the call's other valid
    completions (never itself), exactly as the strategy scores candidates."""
    from signal_hf.acquisition import signal_scores

    texts = [COMPLETIONS[i].strip() for i in VALID]
    q = scorer([{"text": t} for t in texts])
    ref_p = torch.cat([reference.probs, q.probs])
    ref_e = torch.cat([reference.embeddings, q.embeddings])
    own = torch.arange(len(reference), len(reference) + len(texts))
    want = signal_scores(q.probs, q.embeddings, ref_p, ref_e, k=3, eps=1e-4, exclude_self=own)
    for neighbours, expected in (("all", want), ("labeled", signal_scores(q.probs, q.embeddings, reference.probs, reference.embeddings, k=3, eps=1e-4))):
        cfg = AcquisitionConfig(k=3, eps=1e-4, neighbours=neighbours, knn_batch_size=2)  # blocks of 2 rows
        reward = AcquisitionReward(scorer, reference, parse_fn=_parse, acquisition=cfg, rl=RLConfig(reward_normalization="none"))
        got = torch.tensor(reward(completions=COMPLETIONS))[VALID]
        torch.testing.assert_close(got, expected.float(), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(want, expected)  # the two neighbour sets do differ here


def test_reward_batch_normalisation(scorer, reference):
    raw_reward = AcquisitionReward(scorer, reference, parse_fn=_parse, acquisition=AcquisitionConfig(k=3, eps=1e-4), rl=RLConfig(reward_normalization="none"))
    raw = torch.tensor(raw_reward(completions=COMPLETIONS))[VALID]
    reward = AcquisitionReward(scorer, reference, parse_fn=_parse, acquisition=AcquisitionConfig(k=3, eps=1e-4), rl=RLConfig(reward_normalization="batch"))
    calls_before = reward.num_score_calls
    out = torch.tensor(reward(prompts=None, completions=COMPLETIONS))
    assert reward.num_score_calls == calls_before + 1
    valid = out[VALID]
    assert valid.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert valid.std(correction=0).item() == pytest.approx(1.0, abs=1e-4)
    torch.testing.assert_close(valid, (raw - raw.mean()) / raw.std(correction=0), rtol=1e-4, atol=1e-5)
    invalid = [i for i in range(len(COMPLETIONS)) if i not in VALID]
    assert out[invalid].tolist() == [-1.0] * len(invalid)  # penalty applied after normalisation
    # Raw statistics are still reported on the SIGnAL scale.
    assert reward.last_stats["raw_reward_mean"] == pytest.approx(float(raw.mean()), rel=1e-5)


def test_reward_all_invalid_skips_classifier(scorer, reference):
    reward = AcquisitionReward(scorer, reference, parse_fn=_parse, acquisition=AcquisitionConfig(k=2, eps=1e-4))
    scorer.calls.clear()
    assert reward(completions=["", "BAD"]) == [-1.0, -1.0]
    assert scorer.calls == [] and reward.last_stats["valid"] == 0
    assert math.isnan(reward.last_stats["raw_reward_mean"])


def test_reward_errors(scorer, reference):
    with pytest.raises(ConfigError, match="rl.reward_normalization"):  # the config refuses it, once
        RLConfig(reward_normalization="rank")
    empty = PoolOutputs(probs=torch.zeros(0, 3), embeddings=torch.zeros(0, 384))
    with pytest.raises(StrategyError, match="reference"):
        AcquisitionReward(scorer, empty, parse_fn=_parse, acquisition=AcquisitionConfig(k=2, eps=1e-4))
    with pytest.raises(ConfigError, match="acquisition.eps"):
        AcquisitionConfig(k=2, eps=0.0)
    short = AcquisitionReward(lambda items: reference.select([0]), reference, parse_fn=_parse, acquisition=AcquisitionConfig(k=2, eps=1e-4))
    with pytest.raises(StrategyError, match="score_fn"):
        short(completions=["one text", "another text"])


def test_optimize_generator_rejects_bad_config():
    class NotPeft(torch.nn.Module):
        pass

    with pytest.raises(ConfigError, match="rl.beta"):
        optimize_generator(NotPeft(), None, ["p"], lambda **kw: [], RLConfig(beta=0.0),
                           output_dir="unused", seed=0, max_new_tokens=4)
    with pytest.raises(ConfigError, match="rl.algorithm"):
        optimize_generator(NotPeft(), None, ["p"], lambda **kw: [], RLConfig(algorithm="dpo"),
                           output_dir="unused", seed=0, max_new_tokens=4)
    with pytest.raises(ConfigError, match="rl.prompts_per_step"):
        optimize_generator(NotPeft(), None, ["p"], lambda **kw: [], RLConfig(prompts_per_step=2),
                           output_dir="unused", seed=0, max_new_tokens=4)
    with pytest.raises(GenerationError, match="PeftModel"):
        optimize_generator(NotPeft(), None, ["p", "q"], lambda **kw: [], RLConfig(),
                           output_dir="unused", seed=0, max_new_tokens=4)


@pytest.mark.parametrize("kwargs, where", [
    ({"num_generations": 1}, "rl.num_generations"),  # grpo: a group baseline needs 2
    ({"algorithm": "rloo", "num_generations": 1}, "rl.num_generations"),
    ({"algorithm": "dpo"}, "rl.algorithm"),
    ({"reward_normalization": "rank"}, "rl.reward_normalization"),
    ({"max_grad_norm": 0.0}, "rl.max_grad_norm"),
    # PPO-only values are refused when the section is built, whatever the algorithm (not after round 1).
    ({"gamma": 1.5}, "rl.gamma"),
    ({"algorithm": "ppo", "lam": -0.1}, "rl.lam"),
    ({"clip_range": 0.0}, "rl.clip_range"),
    ({"vf_coef": -1.0}, "rl.vf_coef"),
    ({"ppo_minibatches": 9}, "rl.ppo_minibatches"),  # more mini-batches than the 2 × 4 completions
    ({"trl_args": {"use_vllm": True}}, "rl.trl_args.use_vllm"),  # no vllm here (and no pin set allows it today)
])
def test_rl_config_checks_its_values_when_built(kwargs, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        RLConfig(**kwargs)


def test_rl_config_num_generations_rule():
    # One rule: the group baselines (grpo, rloo) need 2 completions per prompt, PPO (a value baseline) 1.
    assert RLConfig(algorithm="ppo", num_generations=1, prompts_per_step=1).num_generations == 1
    assert RLConfig(algorithm="rloo", num_generations=2).num_generations == 2


# ----------------------------------------------------------------------------- real RL rounds (SmolLM2-135M)


@pytest.fixture(scope="module")
def smollm():
    from transformers import AutoTokenizer

    from signal_hf.bundled import resolve_model_path

    path = resolve_model_path("bundled:smollm2-135m")
    tok = AutoTokenizer.from_pretrained(path)
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": f"One sentence about {w}."}], tokenize=False,
                                add_generation_prompt=True)
        for w in ("cats", "rain", "trees")
    ]
    return path, tok, prompts


class _RecordingTracker(Tracker):
    """A tracker that keeps what it is given (axis, step, scalars)."""

    def __init__(self):
        self.logged = []

    def _log(self, scalars, step, axis):
        self.logged.append((axis, step, scalars))

    def finish(self):
        pass


def _e_fraction(prompts=None, completions=None, **kwargs):
    """Deterministic toy reward: share of the completion's characters that are the letter 'e'."""
    return [c.count("e") / max(len(c), 1) for c in completions]


def _fingerprint(t: torch.Tensor) -> tuple[float, float]:
    t = t.detach().double()
    return float(t.sum()), float((t * t).sum())


@pytest.mark.generator
@pytest.mark.parametrize("algorithm", ["grpo", "rloo", "ppo"])
def test_optimize_generator_trains_lora_in_place(algorithm, smollm, tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path, tok, prompts = smollm
    # The KL reference must be the adapter-off model, never a second copy loaded from the path.
    import trl.trainer.grpo_trainer as grpo_mod
    import trl.trainer.rloo_trainer as rloo_mod

    def _no_second_model(*a, **k):
        raise AssertionError("a reference model was loaded")

    monkeypatch.setattr(grpo_mod, "create_model_from_path", _no_second_model)
    monkeypatch.setattr(rloo_mod, "create_model_from_path", _no_second_model)

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(path),
                           LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM"))
    # Start from a non-trivial adapter (as in round ≥ 2): then KL(π ‖ base) > 0 at the first step, while
    # TRL's default (a frozen copy of the current adapter as reference) would give exactly 0.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.02)
    model.eval()
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    base_before = {n: _fingerprint(p) for n, p in model.named_parameters() if "lora_" not in n}

    calls = []

    def reward(prompts=None, completions=None, **kw):
        calls.append(len(completions))
        return _e_fraction(prompts, completions)

    cfg = RLConfig(algorithm=algorithm, beta=0.1, learning_rate=1e-3, steps_per_round=1, num_generations=2,
                   prompts_per_step=2, ppo_epochs=2)
    tracker = _RecordingTracker()
    metrics = optimize_generator(model, tok, prompts, reward, cfg, output_dir=tmp_path / "rl", seed=0,
                                 max_new_tokens=8, callbacks=[tracker.callback("train/rl/", step_offset=4)])

    for key in ("reward_mean", "reward_std", "kl", "policy_loss", "seconds_per_step"):
        assert key in metrics and math.isfinite(metrics[key]), (key, metrics)
    assert metrics["steps"] == 1.0
    assert calls == [4]  # one reward call with prompts_per_step × num_generations completions
    assert 0.0 <= metrics["reward_mean"] <= 1.0
    assert metrics["kl"] > 1e-5  # reference = pretrained (adapter disabled), not the starting adapter
    changed = [n for n, p in model.named_parameters() if "lora_" in n and not torch.equal(p, lora_before[n])]
    assert len(changed) > 0
    assert all(_fingerprint(p) == base_before[n] for n, p in model.named_parameters() if "lora_" not in n)
    assert list(model.peft_config) == ["default"] and model.active_adapter == "default"
    assert not model.training  # train/eval mode restored
    assert "forward" not in model.get_base_model().__dict__  # TRL's fused-LM-head patch removed
    assert not any((tmp_path / "rl").rglob("*.safetensors"))  # the trainer saved no checkpoint
    # The step's logs reach the tracker callback (TRL's Trainer, or PPO's own loop), after the offset.
    loss_key = "train/rl/policy_loss" if algorithm == "ppo" else "train/rl/loss"
    losses = [(axis, step, scalars[loss_key]) for axis, step, scalars in tracker.logged if loss_key in scalars]
    assert losses == [("train/rl", 5, pytest.approx(metrics["policy_loss"]))]
    if algorithm == "ppo":
        assert math.isfinite(metrics["value_loss"]) and metrics["value_loss"] >= 0
    else:
        # A second round on the same model (TRL would refuse to add its "ref" adapter twice).
        after_first = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        again = optimize_generator(model, tok, prompts, reward, cfg, output_dir=tmp_path / "rl2", seed=1,
                                   max_new_tokens=8)
        assert math.isfinite(again["kl"]) and again["kl"] > 1e-5
        assert any(not torch.equal(p, after_first[n]) for n, p in model.named_parameters() if "lora_" in n)
        assert list(model.peft_config) == ["default"]


@pytest.mark.generator
def test_acquisition_reward_drives_rloo_round(smollm, scorer, reference, tmp_path):
    """The real reward inside a TRL trainer: TRL's extra keyword arguments are accepted, stats come back."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path, tok, prompts = smollm
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(path),
                           LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM"))
    reward = AcquisitionReward(scorer, reference, parse_fn=_parse, acquisition=AcquisitionConfig(k=3, eps=1e-4))
    scorer.calls.clear()
    cfg = RLConfig(algorithm="rloo", beta=0.05, steps_per_round=1, num_generations=2, prompts_per_step=2)
    metrics = optimize_generator(model, tok, prompts, reward, cfg, output_dir=tmp_path, seed=0, max_new_tokens=8)
    assert reward.num_calls == 1 and len(scorer.calls) <= 1
    assert reward.last_stats["total"] == 4
    assert metrics["valid_fraction"] == pytest.approx(reward.last_stats["valid_fraction"])
    assert reward.last_stats["valid"] >= 2  # a chat model's 8-token answers are non-empty
    assert metrics["reward_mean"] == pytest.approx(reward.last_stats["reward_mean"], abs=1e-6)
    assert metrics["raw_reward_mean"] > 0
    assert math.isfinite(metrics["kl"])  # fresh adapter: π = π_ref at the first step, so kl is 0 here


def test_bos_is_added_only_when_the_rendered_prompt_lacks_it():
    from transformers import AutoTokenizer

    from signal_hf.bundled import resolve_model_path
    from signal_hf.rl._common import add_special_tokens_for

    tok = AutoTokenizer.from_pretrained(resolve_model_path("bundled:smollm2-135m"))  # bos = <|im_start|>
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert add_special_tokens_for(tok, [chat, chat]) is False
    assert add_special_tokens_for(tok, [chat, "Review: a fine film"]) is True


# ---------------------------------------------------------------- the RL effect probe


def test_probe_gain_and_interval_on_a_known_answer():
    from signal_hf.rl.probe import gain_interval

    off = torch.linspace(0, 1, 64)
    gain, lo, hi = gain_interval(off + 0.5, off)
    assert gain == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)  # paired: no spread
    assert gain_interval(off.clone(), off) == (0.0, 0.0, 0.0)
    g = torch.Generator().manual_seed(1)
    noisy_off = torch.randn(200, generator=g)
    noisy_on = noisy_off + 0.3 + 0.5 * torch.randn(200, generator=g)
    gain, lo, hi = gain_interval(noisy_on, noisy_off)
    assert lo < 0.3 < hi and lo > 0  # the true shift is inside, and the gain is positive beyond it
    # Without drops it is the textbook paired t-interval.
    d = (noisy_on - noisy_off).double()
    half = 1.9720 * float(d.std() / 200**0.5)  # t(0.975, 199)
    assert (lo, hi) == (pytest.approx(float(d.mean()) - half, rel=1e-3), pytest.approx(float(d.mean()) + half, rel=1e-3))
    _, lo0, hi0 = gain_interval(noisy_off + 0.5 * torch.randn(200, generator=g), noisy_off)
    assert lo0 < 0 < hi0  # no shift: the interval straddles 0
    # Dropped completions (NaN) leave the means, not the pairing.
    with_nan = noisy_on.clone()
    with_nan[:10] = float("nan")
    gain, lo, hi = gain_interval(with_nan, noisy_off)
    assert gain == pytest.approx(float(noisy_on[10:].mean() - noisy_off.mean()), rel=1e-5) and lo < gain < hi
    assert all(v != v for v in gain_interval(torch.full((4,), float("nan")), torch.ones(4))[1:])  # nothing valid: NaN bounds
    one = torch.tensor([5.0, float("nan"), float("nan"), float("nan")])  # one valid completion: its spread is unknown
    assert all(v != v for v in gain_interval(one, torch.tensor([0.0, 1.0, 2.0, 3.0]))[1:])
    assert all(v != v for v in gain_interval(one, one - 1)[1:])
    # Prompts both policies dropped do not count: padding with them leaves the interval as it was.
    padded = gain_interval(torch.cat([noisy_on[:10], torch.full((6,), float("nan"))]), torch.cat([noisy_off[:10], torch.full((6,), float("nan"))]))
    assert padded == pytest.approx(gain_interval(noisy_on[:10], noisy_off[:10]))


def test_probe_interval_is_calibrated_on_few_skewed_prompts():
    """No true gain, 16 prompts, lognormal rewards correlated across the two policies (the probe's
    shape), a third of the draws with 3 dropped completions: the interval must miss 0 about 5 % of the
    time. The percentile bootstrap it replaced misses far more often on the same draws."""
    from signal_hf.rl.probe import gain_interval

    g = torch.Generator().manual_seed(0)
    trials, n = 1000, 16
    z1 = torch.randn(trials, n, generator=g)
    z2 = 0.8 * z1 + 0.6 * torch.randn(trials, n, generator=g)
    on, off = torch.exp(z1), torch.exp(z2)
    on[::3, :3] = float("nan")
    intervals = [gain_interval(on[t], off[t])[1:] for t in range(trials)]
    miss = sum(not (lo <= 0 <= hi) for lo, hi in intervals) / trials
    assert 0.02 <= miss <= 0.065, miss
    missed = 0  # the old percentile bootstrap on the same draws, 100 trials at a time
    for t in range(0, trials, 100):
        idx = torch.randint(0, n, (100, 2000, n), generator=g)
        rows = torch.arange(t, t + 100)[:, None, None]
        boot = on[rows, idx].nanmean(-1) - off[rows, idx].nanmean(-1)
        lo, hi = boot.quantile(0.025, dim=1), boot.quantile(0.975, dim=1)
        missed += int(((lo > 0) | (hi < 0)).sum())
    assert missed / trials > 0.08


def test_probe_metrics_per_policy():
    from signal_hf.rl.probe import PolicySample, probe_metrics

    on = PolicySample(torch.tensor([1.0, float("nan"), 3.0]), [None, "duplicate", None], ["positive", "negative"], torch.tensor([0.2, 0.4]))
    off = PolicySample(torch.tensor([1.0, 1.0, float("nan")]), [None, None, "empty"], ["negative", "negative"], torch.tensor([0.5, 0.7]))
    m = probe_metrics(on, off, label_names=["negative", "positive"])
    assert m["probe_prompts"] == 3 and m["probe_reward_on"] == 2.0 and m["probe_reward_off"] == 1.0 and m["probe_gain"] == 1.0
    assert m["probe_valid_on"] == pytest.approx(2 / 3) and m["probe_duplicate_on"] == pytest.approx(1 / 3) and m["probe_duplicate_off"] == 0
    assert m["probe_labels_on"] == {"negative": 1, "positive": 1} and m["probe_labels_off"] == {"negative": 2, "positive": 0}
    assert m["probe_relevance_on"] == pytest.approx(0.3) and m["probe_relevance_off"] == pytest.approx(0.6)
    # Per-prompt rewards in prompt order, None where the completion was dropped (JSON has no NaN).
    assert m["probe_rewards_on"] == [1.0, None, 3.0] and m["probe_rewards_off"] == [1.0, 1.0, None]


@pytest.mark.generator
def test_grpo_rollouts_come_from_the_generators_sampling_loop(tmp_path):
    """Under ``decoding: fast`` GRPO's completions are the generator's own samples (TRL's rollout_func):
    the reward sees exactly what the sampler wrote, every completion ends at the example boundary (a stop
    token) or the length cap, the LoRA weights train, and the same seed gives the same rollouts."""
    from datasets import Dataset

    from signal_hf.generation import Generator, GeneratorConfig
    from signal_hf.types import TaskSpec

    cfg = GeneratorConfig(max_new_tokens=12, batch_size=4, lora_r=4, lora_alpha=8)
    rl = RLConfig(algorithm="grpo", beta=0.04, learning_rate=1e-3, steps_per_round=2, num_generations=2, prompts_per_step=2)
    pool = Dataset.from_dict({"text": ["a warm , funny film", "dull and far too long", "a quiet triumph", "nothing works here"], "label": [1, 0, 1, 0]})
    task = TaskSpec("sst2", ("negative", "positive"), task_type="sentiment")

    torch.manual_seed(0)
    gen = Generator.from_pretrained("bundled:smollm2-135m", task=task, config=cfg)
    prompts = gen.build_prompts(pool, 4, seed=0)
    sampler, written, seen = gen.rollout_sampler(), [], []

    def recording_sampler(ps, s):
        prompt_ids, completion_ids = sampler(ps, s)
        written.append((list(ps), completion_ids))
        return prompt_ids, completion_ids

    def reward(prompts=None, completions=None, **kw):
        seen.append(list(completions))
        return _e_fraction(prompts, completions)

    before = {n: p.detach().clone() for n, p in gen.model.named_parameters() if "lora_" in n}
    metrics = optimize_generator(gen.model, gen.tokenizer, prompts, reward, rl, output_dir=tmp_path, seed=3,
                                 max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p, sampler=recording_sampler)
    changed = any(not torch.equal(p, before[n]) for n, p in gen.model.named_parameters() if "lora_" in n)
    assert metrics["steps"] == 2.0 and changed and math.isfinite(metrics["kl"])
    assert len(written) == 2 and all(len(ps) == 4 for ps, _ in written)  # one call per step, 2 prompts × 2 generations
    assert all(len(set(ps)) == 2 and all(ps.count(p) == 2 for p in ps) for ps, _ in written)  # each prompt once per generation
    stops = set(gen._stop_ids)
    decoded = [[gen.tokenizer.decode(ids, skip_special_tokens=True) for ids in ids_list] for _, ids_list in written]
    assert seen == decoded  # the reward scored the sampler's completions
    for _, ids_list in written:
        for ids in ids_list:
            assert ids and (ids[-1] in stops or len(ids) == cfg.max_new_tokens)
            assert not any(t in stops for t in ids[:-1])  # nothing sampled past the example boundary
    # Seeded: a fresh rollout_func with the same seed writes the same first rollouts; another rank others.
    from types import SimpleNamespace

    from signal_hf.rl.trl_trainers import rollout_func

    rank = lambda i: SimpleNamespace(accelerator=SimpleNamespace(process_index=i))  # noqa: E731
    first_prompts = written[0][0]
    again = rollout_func(gen.rollout_sampler(), 3)(first_prompts, rank(0))
    other = rollout_func(gen.rollout_sampler(), 3)(first_prompts, rank(1))
    assert again["completion_ids"] == rollout_func(gen.rollout_sampler(), 3)(first_prompts, rank(0))["completion_ids"]
    assert again["prompt_ids"] == gen.tokenizer(first_prompts, add_special_tokens=not gen.chat)["input_ids"] and again["logprobs"] is None
    assert other["completion_ids"] != again["completion_ids"]
