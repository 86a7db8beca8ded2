"""The stages of one round, in order: generate → score → select → annotate → retrain →
self-inform → probe → check-stop, then save. Each takes the trial's :class:`RoundContext` and the :class:`RoundState`
so far and returns the new state and the measurements it adds to the round's row.

Round 0 runs ``retrain`` (and ``check_stop``) only (its labeled set is the seeded random initial set); a pool-based
method skips ``generate``, ``self_inform`` and ``probe``; a frozen generator skips ``self_inform``; ``check_stop`` runs with ``loop.stop_when``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from datasets import Dataset, concatenate_datasets

from ..acquisition.budget import split_budget
from ..types import AcquisitionState
from .records import round_state
from .state import RoundContext, RoundState, derive_seed, labeled_features

__all__ = ["generate", "score", "select", "annotate", "retrain", "self_inform", "probe", "check_stop", "save", "candidates_of"]

Metrics = dict


def candidates_of(ctx: RoundContext, labeled: Dataset, synthetic: Dataset) -> Dataset:
    """U \\ L: the real pool, then the synthetic pool, without the labeled items."""
    taken = set(labeled["id"][:])
    cols = ["id", *ctx.retrainer.text_cols, "label", "source"]
    real = ctx.real_pool.filter(lambda r: r["id"] not in taken).select_columns(cols)
    if len(synthetic):
        syn = synthetic.filter(lambda r: r["id"] not in taken).select_columns(cols)
        return concatenate_datasets([real, syn]) if len(real) else syn
    return real


def _text_keys(ctx: RoundContext, ds: Dataset) -> list:
    if ctx.task.spec.is_pair:  # pairs are duplicates only when both fields match
        return [tuple(x) for x in zip(ds["text"][:], ds["text_pair"][:])]
    return ds["text"][:]


def generate(ctx: RoundContext, state: RoundState) -> tuple[RoundState, Metrics]:
    """The generator writes ``candidates_per_round · b`` candidates; the valid, new ones join S."""
    r = state.round
    n = max(1, int(math.ceil(ctx.cfg.generator.candidates_per_round * ctx.schedule.budget)))
    ctx.phase(f"round {r}: generate {n}")
    t = time.perf_counter()
    existing = _text_keys(ctx, state.synthetic) + _text_keys(ctx, state.labeled)  # the generator adds R itself
    new, stats = ctx.generator.generate(ctx.real_pool, n, round_idx=r, seed=derive_seed(ctx.seed, r, "generate"), existing_texts=existing,
                                        progress=lambda done, total: ctx.phase(f"round {r}: generate {done}/{total}"))
    metrics = {
        "generated": stats.generated, "kept": stats.kept, "generate_s": time.perf_counter() - t,
        "dropped": sum(stats.dropped.values()), "dropped_by_reason": dict(stats.dropped),
    }
    synthetic = state.synthetic
    if len(new):
        new = new.cast(synthetic.features) if len(synthetic) else new
        synthetic = concatenate_datasets([synthetic, new]) if len(synthetic) else new
    return replace(state, synthetic=synthetic), metrics


def score(ctx: RoundContext, state: RoundState) -> tuple[RoundState, Metrics]:
    """The previous round's M scores the candidates U \\ L (new synthetic ones included)."""
    candidates = candidates_of(ctx, state.labeled, state.synthetic)
    if len(candidates) == 0:
        return replace(state, candidates=candidates, stop="no candidates left"), {}
    model = state.model
    if model.candidate_ids == candidates["id"][:]:
        scored = (model.labeled_out, model.candidates_out)
    else:
        lab_out, cand_out, classifier = ctx.retrainer.rescore(model, state.labeled, candidates, state.round)
        scored, model = (lab_out, cand_out), replace(model, classifier=classifier)
    return replace(state, candidates=candidates, scored=scored, model=model), {}


def select(ctx: RoundContext, state: RoundState) -> tuple[RoundState, Metrics]:
    """The strategy picks this round's budget, split between R and S per the method's budget split
    (``signal-gen-adaptive``), else ``loop.budget_split``."""
    r = state.round
    n = ctx.schedule.round_budget(r, len(state.labeled))
    ctx.phase(f"round {r}: acquire {n} of {len(state.candidates)}")
    t = time.perf_counter()
    lab_out, cand_out = state.scored
    acq = AcquisitionState(unlabeled=cand_out, labeled=lab_out, seed=derive_seed(ctx.seed, r, "acquire"), metadata={"round": r})
    mode = (ctx.method.budget_split or ctx.cfg.loop.budget_split) if ctx.method.generate else "free"
    split = split_budget(ctx.strategy, acq, state.candidates["source"][:], n, mode=mode, share=state.synthetic_share)
    metrics = {"acquire_s": time.perf_counter() - t, **split.info}
    if split.scores is not None:  # aligned with the picks; annotation may skip some (selected_ids)
        metrics["selected_scores"] = dict(zip(state.candidates.select(split.picked)["id"][:], split.scores))
    return replace(state, chosen=state.candidates.select(split.picked), synthetic_share=split.next_share), metrics


def annotate(ctx: RoundContext, state: RoundState) -> tuple[RoundState, Metrics]:
    """Real items get their gold labels, synthetic ones the configured oracle's; skipped items are dropped."""
    r, chosen = state.round, state.chosen
    ctx.phase(f"round {r}: annotate {len(chosen)}")
    sources = chosen["source"][:]
    labels: list[int | None] = [None] * len(chosen)
    for is_syn, oracle in ((False, ctx.real_oracle), (True, ctx.synthetic_oracle)):
        rows = [i for i, s in enumerate(sources) if (s == "synthetic") == is_syn]
        if rows:
            oracle.observe(state.labeled, seed=derive_seed(ctx.seed, r, "oracle", oracle.name))
            for i, label in zip(rows, oracle.annotate(chosen.select(rows))):
                labels[i] = label
    keep = [i for i, label in enumerate(labels) if label is not None]
    chosen = chosen.select(keep).map(lambda row, i: {"label": labels[keep[i]], "round_acquired": r}, with_indices=True, features=labeled_features(ctx.real_pool))
    metrics = {
        "skipped_by_oracle": len(labels) - len(keep),
        # ``budget`` is the nominal b; the last round takes the remainder, so record the real count.
        "acquired": len(chosen),
        "acquired_synthetic": sum(1 for s in chosen["source"][:] if s == "synthetic"),
        "selected_ids": chosen["id"][:],
    }
    return replace(state, labeled=concatenate_datasets([state.labeled, chosen]), chosen=chosen), metrics


def retrain(ctx: RoundContext, state: RoundState) -> tuple[RoundState, Metrics]:
    """M refitted from its pretrained checkpoint on the grown L, evaluated, and scoring the next candidates."""
    candidates = candidates_of(ctx, state.labeled, state.synthetic)
    # Generative methods score new text with M (the next round's candidates, the reward, the probe).
    fitted = ctx.retrainer.fit(state.labeled, candidates, state.round, need_classifier=ctx.method.generate)
    return replace(state, model=fitted), dict(fitted.times)


def _reward(ctx: RoundContext, state: RoundState):
    """The self-informed reward of this round: the retrained M's SIGnAL score of a completion, under
    the acquisition's own settings; completions the loop would drop (malformed, duplicates of S, R,
    L or of each other) get the invalid penalty."""
    from ..rl import AcquisitionReward

    model = state.model
    parse = ctx.generator.completion_parser(ctx.real_pool, _text_keys(ctx, state.synthetic) + _text_keys(ctx, state.labeled))
    return AcquisitionReward(
        lambda rows: model.classifier.pool_outputs(Dataset.from_list(rows)), model.labeled_out,
        parse_fn=parse, acquisition=ctx.cfg.acquisition, rl=ctx.cfg.rl,
    )


def self_inform(ctx: RoundContext, state: RoundState) -> tuple[RoundState, Metrics]:
    """RL on the generator: the retrained M's SIGnAL score of each (prompt, completion) is its reward."""
    from ..rl import optimize_generator

    rl, gen = ctx.cfg.rl, ctx.cfg.generator
    r = state.round
    ctx.phase(f"round {r}: RL ({rl.algorithm})")
    t = time.perf_counter()
    prompts = ctx.generator.build_prompts(ctx.real_pool, rl.prompts_per_step * rl.steps_per_round, seed=derive_seed(ctx.seed, r, "rl-prompts"))
    # The RL steps of round r follow those of rounds 1..r-1 on the tracker's train/rl axis.
    callbacks = [ctx.tracker.callback("train/rl/", step_offset=(r - 1) * rl.steps_per_round)] if ctx.tracker else None
    metrics = optimize_generator(
        ctx.generator.model, ctx.generator.tokenizer, prompts, _reward(ctx, state), rl,
        output_dir=ctx.workdir / "rl", seed=derive_seed(ctx.seed, r, "rl"),
        max_new_tokens=gen.max_new_tokens, temperature=gen.temperature, top_p=gen.top_p, callbacks=callbacks,
        sampler=ctx.generator.rollout_sampler(),  # GRPO's rollouts from the generator's own sampling loop
    )
    # A metric can be undefined for a step (e.g. the std of one reward): store None, not NaN.
    out = {f"rl_{k}": (float(v) if math.isfinite(float(v)) else None) for k, v in metrics.items()}
    out["rl_s"] = time.perf_counter() - t
    return state, out


def probe(ctx: RoundContext, state: RoundState) -> tuple[RoundState, Metrics]:
    """The RL effect: the fixed probe prompts sampled with the adapter on and off (the pretrained
    policy), both scored with this round's reward (:mod:`signal_hf.rl.probe`)."""
    from ..rl.probe import measure_policy, probe_metrics

    n = ctx.cfg.rl.probe_prompts
    if n == 0:
        return state, {}
    r, gen = state.round, ctx.generator
    ctx.phase(f"round {r}: probe the generator ({n} prompts)")
    t = time.perf_counter()
    prompts = gen.build_prompts(ctx.real_pool, n, seed=derive_seed(ctx.seed, "probe-prompts"))  # the same every round
    sample_seed = derive_seed(ctx.seed, "probe-sample")
    on = gen.generate_raw(prompts, seed=sample_seed)
    if ctx.method.self_inform:
        with gen.model.disable_adapter():
            off = gen.generate_raw(prompts, seed=sample_seed)
    else:  # a frozen generator's fresh LoRA adds exactly zero: on and off are one policy
        off = on
    reward = _reward(ctx, state)
    names = ctx.task.spec.label_names
    oracle = ctx.synthetic_oracle if ctx.synthetic_oracle is not None and not ctx.synthetic_oracle.asks_people else None  # never ask a person
    if oracle is not None:  # its own draw from this round's L: the same after a resume, and set even when annotate used no synthetic item
        oracle.observe(state.labeled, seed=derive_seed(ctx.seed, r, "probe-oracle"))
    annotate = (lambda items: [names[y] for y in oracle.annotate(Dataset.from_list(items)) if y is not None]) if oracle is not None else None
    real_emb = real_pool_outputs(ctx, state, "embeddings")[0]
    measure = lambda texts: measure_policy(texts, parse_fn=reward.parse_fn, classify=reward.classify, score_outputs=reward.score_outputs, annotate=annotate, real_embeddings=real_emb)  # noqa: E731
    metrics = probe_metrics(measure(on), measure(off), label_names=names)
    metrics["probe_s"] = time.perf_counter() - t
    return state, metrics


def real_pool_outputs(ctx: RoundContext, state: RoundState, field: str) -> tuple[torch.Tensor, torch.Tensor]:
    """M's ``field`` (``probs``, ``embeddings``) for every real-pool item, read from the round's pass
    over L and the candidates (no new inference), and which of them are unlabeled."""
    model = state.model
    row_of = {i: (model.labeled_out, n, False) for n, i in enumerate(state.labeled["id"][:])}
    row_of.update({i: (model.candidates_out, n, True) for n, i in enumerate(model.candidate_ids)})
    rows = [row_of[i] for i in ctx.real_pool["id"][:]]
    return torch.stack([getattr(out, field)[n] for out, n, _ in rows]), torch.tensor([unl for _, _, unl in rows])


def check_stop(ctx: RoundContext, state: RoundState) -> tuple[RoundState, Metrics]:
    """``loop.stop_when``: this round's predictions on the stop set (the real pool) against the
    previous round's, and its uncertainty; the criteria that fire make this round the last."""
    from .stopping import cohen_kappa, fired_criteria, normalised_entropy

    loop = ctx.cfg.loop
    probs, unlabeled = real_pool_outputs(ctx, state, "probs")
    preds = probs.argmax(-1)
    kappas = state.kappas
    metrics: Metrics = {"stop_uncertainty": normalised_entropy(probs[unlabeled])}
    if state.stop_predictions is not None:
        kappas = (*kappas, cohen_kappa(state.stop_predictions, preds, ctx.task.spec.num_labels))
        metrics["stop_kappa"] = kappas[-1]
    metrics["stop_kappas"] = list(kappas)  # the history travels in the saved state (resume decides alike)
    fired = fired_criteria(
        loop.stop_when, kappas=kappas, uncertainty=metrics["stop_uncertainty"], labeled=len(state.labeled),
        kappa=loop.stop_kappa, window=loop.stop_window, max_uncertainty=loop.stop_uncertainty, max_labels=loop.stop_max_labels,
    )
    if fired:
        metrics["stopped_by"] = fired
    return replace(state, stop_predictions=preds, kappas=kappas, stopped_by=tuple(fired)), metrics


def save(ctx: RoundContext, state: RoundState, metrics: Metrics) -> str:
    """The round's L, R, S, state and adapter, written to the store as one revision."""
    r = state.round
    ctx.phase(f"round {r}: save")
    saved = round_state(ctx, state.model.accuracy, metrics, state.synthetic_share if r > 0 else None)
    tmp = Path(tempfile.mkdtemp(prefix="adapter-")) if ctx.generator is not None else None
    try:
        if tmp is not None:
            ctx.generator.save_adapter(tmp)
        rev = ctx.store.save_round(
            ctx.run_id, r,
            datasets={"labeled": state.labeled, "real_pool": ctx.real_pool, "synthetic_pool": state.synthetic},
            state=saved, adapter_dir=tmp,
            message=f"{ctx.method.name} seed {ctx.seed} round {r}: accuracy {state.model.accuracy:.4f}",
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return rev
