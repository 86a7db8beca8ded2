"""The active-learning round loop and the experiment runner (trials × methods × seeds).

Round r of a trial:

1. *Generate* (generative SIGnAL only): the generator writes candidates that join S.
2. *Acquire*: one inference pass of the current classifier over L and the candidates U \\ L; the
   strategy picks b (split between real and synthetic per ``loop.budget_split``).
3. *Annotate*: gold labels for real items, the configured oracle for synthetic ones.
4. *Retrain* the classifier from the pretrained checkpoint on L and evaluate accuracy.
5. *Self-inform* (generative SIGnAL with ``rl.enabled``): the retrained classifier's SIGnAL score is
   the reward of RL fine-tuning of the generator's LoRA adapter.
6. *Save* the round (L, R, S, state, adapter) to the round store, then append the result row.

Every random choice is seeded from (trial seed, round), so a run resumed from its last complete
round makes the same selections as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
from datasets import Dataset, concatenate_datasets

from .acquisition import get_strategy, top_n
from .classifier import Classifier, fit_classifier, order_for_eval
from .config import ExperimentConfig, to_yaml
from .data import TaskData, load_task, pool_size, sample_pool
from .encoder import SentenceEncoder, get_encoder
from .environment import lock_digest
from .errors import ConfigError, SignalHFError
from .results import ResultsLog, write_report
from .run_folder import check_output_dir, hold_run_folder
from .store import RoundStore, make_store, revision_name
from .types import AcquisitionState, PoolOutputs

__all__ = ["Experiment", "Trial", "method_name", "run_experiment", "recipe_hash"]

logger = logging.getLogger("signal_hf")


def method_name(strategy: str, cfg: ExperimentConfig) -> str:
    """``signal-gen`` for SIGnAL with the generator on, else the strategy name."""
    return f"{strategy}-gen" if strategy == "signal" and cfg.generator.enabled else strategy


def recipe_hash(cfg: ExperimentConfig) -> str:
    """Hash of everything that changes results (output locations excluded), to refuse mixing runs."""
    d = cfg.to_dict()
    d.pop("output", None)
    d.pop("store", None)
    # Seeds, strategies and how far to go may change between a run and its continuation.
    d["loop"] = {k: v for k, v in d["loop"].items() if k not in ("seeds", "max_fraction", "signal_max_fraction")}
    d["acquisition"] = {k: v for k, v in d["acquisition"].items() if k != "strategies"}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


# Keys of a round's saved state that are not measurements of its result row.
_STATE_ONLY = frozenset({"accuracy", "recipe_hash", "recipe", "method", "seed", "synthetic_share", "store_s"})


def _derive_seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


def log_event(event: str, **fields: Any) -> None:
    """One structured log line: ``event key=value ...`` (floats rounded)."""
    parts = []
    for k, v in fields.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        parts.append(f"{k}={v}")
    logger.info("%s %s", event, " ".join(parts))


def _empty_like(ds: Dataset) -> Dataset:
    return ds.select([])


@dataclass
class _Shared:
    """Per-experiment caches shared by trials: identical inputs give identical outputs."""

    pretrained: SentenceEncoder | None = None
    # Union of the PoolOutputs fields all strategies need: one cached pass serves every strategy.
    need: frozenset[str] = frozenset()
    # (seed, labeled ids, candidate ids) -> (accuracy, PoolOutputs of labeled, PoolOutputs of candidates)
    trained: dict[str, tuple[float, PoolOutputs, PoolOutputs]] = field(default_factory=dict)


class Trial:
    """One (strategy, seed) run of the round loop."""

    def __init__(self, cfg: ExperimentConfig, task: TaskData, strategy: str, seed: int, *, store: RoundStore, results: ResultsLog, shared: _Shared, progress=None, is_main: bool = True):
        self.cfg = cfg
        self.task = task
        self.strategy_name = strategy
        self.strategy = get_strategy(strategy, cfg.acquisition)
        self.seed = seed
        self.method = method_name(strategy, cfg)
        self.run_id = f"{self.method}-seed{seed}"
        self.store = store
        self.results = results
        self.shared = shared
        self.progress = progress
        self.is_main = is_main
        self.generative = strategy == "signal" and cfg.generator.enabled
        self.real_pool = sample_pool(task, cfg.data.pool_fraction, seed)
        self.R = len(self.real_pool)
        self.budget = max(1, int(round(cfg.loop.step_fraction * self.R)))
        self.initial_size = max(1, int(round(cfg.loop.initial_fraction * self.R)))
        limit = cfg.loop.signal_max_fraction if self.generative else cfg.loop.max_fraction
        self.limit_fraction = limit
        self.max_labeled = int(round(limit * self.R))
        self.generator = None
        self.oracle = None
        self._gold = {i: l for i, l in zip(self.real_pool["id"][:], self.real_pool["label"][:])}
        self._synthetic_share = cfg.loop.synthetic_share
        self.workdir = Path(cfg.output.output_dir) / "work" / self.run_id

    # ------------------------------------------------------------------ helpers

    @property
    def num_rounds(self) -> int:
        """Rounds after round 0: one per ``step_fraction`` checkpoint up to the limit.

        Counted in fractions, not labels: with rounded sizes (|R| = 105, b = 10) a count in labels
        would add a 1-item round reported as the next checkpoint; the last round takes the remainder.
        """
        loop = self.cfg.loop
        checkpoints = math.ceil((self.limit_fraction - loop.initial_fraction) / loop.step_fraction - 1e-6)
        # ... but never a round with nothing left to acquire (a limit just above a checkpoint).
        return max(0, min(checkpoints, math.ceil((self.max_labeled - self.initial_size) / self.budget)))

    def round_budget(self, round_idx: int, labeled: int) -> int:
        """Items to acquire in ``round_idx``: b, or whatever reaches ``max_labeled`` in the last round."""
        remaining = self.max_labeled - labeled
        return remaining if round_idx >= self.num_rounds else min(self.budget, remaining)

    def step_percent(self, round_idx: int) -> int:
        """The checkpoint of ``round_idx`` in % of |R| (the last one is the limit itself)."""
        loop = self.cfg.loop
        return int(round(100 * min(loop.initial_fraction + round_idx * loop.step_fraction, self.limit_fraction)))

    def _phase(self, text: str) -> None:
        if self.progress is not None:
            self.progress.describe(f"{self.run_id}: {text}")

    def _train(self, labeled: Dataset, candidates: Dataset, round_idx: int, *, need: set[str]) -> tuple[Classifier | None, float, PoolOutputs, PoolOutputs, dict]:
        """Retrain on ``labeled`` (sorted by id, so the same set gives the same model), evaluate, and
        run the inference pass over ``labeled`` and ``candidates``. Cached across strategies."""
        key = hashlib.sha256(
            json.dumps([self.seed, sorted(labeled["id"][:]), candidates["id"][:], sorted(need), self.generative and self.cfg.rl.enabled]).encode()
        ).hexdigest()
        times: dict[str, float] = {}
        needs_trainer = self.generative and self.cfg.rl.enabled
        if key in self.shared.trained and not needs_trainer:
            acc, lab_out, cand_out = self.shared.trained[key]
            return None, acc, lab_out, cand_out, {"cached": 1.0}
        self._phase(f"round {round_idx}: train on {len(labeled)}")
        t = time.perf_counter()
        trainer = fit_classifier(self.cfg.classifier, self.task.spec, labeled, self.task.test, output_dir=self.workdir / "classifier", seed=self.seed)
        times["train_s"] = time.perf_counter() - t
        self._phase(f"round {round_idx}: evaluate")
        t = time.perf_counter()
        acc = trainer.accuracy()
        times["eval_s"] = time.perf_counter() - t
        t = time.perf_counter()
        lab_out, cand_out = self._pool_pass(trainer, labeled, candidates, need)
        times["inference_s"] = time.perf_counter() - t
        self.shared.trained[key] = (acc, lab_out, cand_out)
        return trainer, acc, lab_out, cand_out, times

    def _text_cols(self) -> list[str]:
        return ["text", "text_pair"] if self.task.spec.is_pair else ["text"]

    def _candidates(self, labeled: Dataset, synthetic: Dataset) -> Dataset:
        taken = set(labeled["id"][:])
        cols = self._common_columns()
        real = self.real_pool.filter(lambda r: r["id"] not in taken).select_columns(cols)
        if len(synthetic):
            syn = synthetic.filter(lambda r: r["id"] not in taken).select_columns(cols)
            return concatenate_datasets([real, syn]) if len(real) else syn
        return real

    def _common_columns(self) -> list[str]:
        return ["id", *self._text_cols(), "label", "source"]

    def _select(self, state: AcquisitionState, candidates: Dataset, n: int) -> tuple[list[int], dict]:
        """Indices into ``candidates`` picked this round, honouring ``loop.budget_split``."""
        info: dict[str, Any] = {}
        sources = candidates["source"][:]
        syn_idx = [i for i, s in enumerate(sources) if s == "synthetic"]
        real_idx = [i for i, s in enumerate(sources) if s != "synthetic"]
        split = self.cfg.loop.budget_split
        if not self.generative or split == "free" or not syn_idx or not real_idx:
            return self.strategy.query(state, n).tolist(), info
        # Split the budget: the synthetic share is fixed, or follows what a free top-b would take.
        if self.strategy.has_scores:
            scores = self.strategy.scores(state)
            free = top_n(scores, n).tolist()
            info["free_synthetic_share"] = sum(1 for i in free if sources[i] == "synthetic") / max(1, len(free))
        else:
            scores = None
        share = self._synthetic_share
        n_syn = min(len(syn_idx), int(round(share * n)))
        n_real = min(len(real_idx), n - n_syn)
        n_syn = min(len(syn_idx), n - n_real)
        picked: list[int] = []
        for idx, k in ((syn_idx, n_syn), (real_idx, n_real)):
            if k <= 0:
                continue
            if scores is not None:
                local = top_n(scores[idx], k).tolist()
            else:
                sub = AcquisitionState(unlabeled=state.unlabeled.select(idx), labeled=state.labeled, seed=state.seed, metadata=state.metadata)
                local = self.strategy.query(sub, k).tolist()
            picked.extend(idx[j] for j in local)
        if split == "adaptive" and "free_synthetic_share" in info:
            # The paper's proposed improvement: move budget to synthetic data as the generator's
            # acquired share (under free competition) grows.
            self._synthetic_share = info["free_synthetic_share"]
        info["synthetic_share_used"] = share
        return picked, info

    def _annotate(self, items: Dataset) -> list[int | None]:
        labels: list[int | None] = []
        syn_rows = [i for i, s in enumerate(items["source"][:]) if s == "synthetic"]
        syn_labels = {}
        if syn_rows:
            got = self.oracle.annotate(items.select(syn_rows))
            syn_labels = dict(zip(syn_rows, got))
        for i, (rid, src) in enumerate(zip(items["id"][:], items["source"][:])):
            labels.append(syn_labels[i] if src == "synthetic" else self._gold[rid])
        return labels

    # ------------------------------------------------------------------ generator

    def _setup_generator(self, adapter_path: Path | None, revision: str) -> None:
        from .generation import Generator
        from .oracles import make_oracle

        self._phase("load generator")
        # A fresh LoRA's random init is seeded too, so the same recipe and seed give the same run
        # whatever ran before in the process (RL trains that init from round 1 on).
        with torch.random.fork_rng():
            torch.manual_seed(_derive_seed(self.seed, "lora-init"))
            self.generator = Generator.from_pretrained(
                self.cfg.generator.model_name_or_path, task=self.task.spec, config=self.cfg.generator,
                revision=self.cfg.generator.revision, adapter=adapter_path,
            )
        self.generator.revision = revision
        self.oracle = make_oracle(self.cfg.oracle.synthetic, self.task.spec, self.cfg.oracle)

    def _generate(self, round_idx: int, labeled: Dataset, synthetic: Dataset) -> tuple[Dataset, dict]:
        n = max(1, int(math.ceil(self.cfg.generator.candidates_per_round * self.budget)))
        self._phase(f"round {round_idx}: generate {n}")
        t = time.perf_counter()
        if self.task.spec.is_pair:  # pairs are duplicates only when both fields match
            existing = [tuple(x) for ds in (self.real_pool, synthetic, labeled) for x in zip(ds["text"][:], ds["text_pair"][:])]
        else:
            existing = self.real_pool["text"][:] + synthetic["text"][:] + labeled["text"][:]
        new, stats = self.generator.generate(self.real_pool, n, round_idx=round_idx, seed=_derive_seed(self.seed, round_idx, "generate"), existing_texts=existing)
        info = {"generated": stats.generated, "kept": stats.kept, "dropped": dict(stats.dropped), "generate_s": time.perf_counter() - t}
        if len(new):
            new = new.cast(synthetic.features) if len(synthetic) else new
            synthetic = concatenate_datasets([synthetic, new]) if len(synthetic) else new
        return synthetic, info

    def _self_inform(self, round_idx: int, trainer: Classifier, labeled_out: PoolOutputs) -> dict:
        from .rl import AcquisitionReward, optimize_generator

        rl = self.cfg.rl
        a = self.cfg.acquisition
        self._phase(f"round {round_idx}: RL ({rl.algorithm})")
        t = time.perf_counter()
        reward = AcquisitionReward(
            lambda rows: trainer.pool_outputs(Dataset.from_list(rows)),
            labeled_out, k=a.k, eps=a.eps, distance=a.distance, validity_fn=self.generator.postprocess,
            invalid_penalty=rl.invalid_penalty, normalization=rl.reward_normalization,
        )
        prompts = self.generator.build_prompts(self.real_pool, rl.prompts_per_step * rl.steps_per_round, seed=_derive_seed(self.seed, round_idx, "rl-prompts"))
        metrics = optimize_generator(
            self.generator.model, self.generator.tokenizer, prompts, reward, rl,
            output_dir=self.workdir / "rl", seed=_derive_seed(self.seed, round_idx, "rl"),
            max_new_tokens=self.cfg.generator.max_new_tokens, temperature=self.cfg.generator.temperature, top_p=self.cfg.generator.top_p,
        )
        # A metric can be undefined for a step (e.g. the std of one reward): store None, not NaN.
        metrics = {f"rl_{k}": (float(v) if math.isfinite(float(v)) else None) for k, v in metrics.items()}
        metrics["rl_s"] = time.perf_counter() - t
        return metrics

    # ------------------------------------------------------------------ the loop

    def _save(self, round_idx: int, labeled: Dataset, synthetic: Dataset, state: dict) -> str:
        self._phase(f"round {round_idx}: save")
        adapter_dir = None
        tmp = None
        if self.generator is not None:
            tmp = Path(tempfile.mkdtemp(prefix="adapter-"))
            self.generator.save_adapter(tmp)
            adapter_dir = tmp
        try:
            t = time.perf_counter()
            rev = self.store.save_round(
                self.run_id, round_idx,
                datasets={"labeled": labeled, "real_pool": self.real_pool, "synthetic_pool": synthetic},
                state=state, adapter_dir=adapter_dir,
                message=f"{self.method} seed {self.seed} round {round_idx}: accuracy {state['accuracy']:.4f}",
            )
            state["store_s"] = time.perf_counter() - t
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        return rev

    def _check_ranks_agree(self, round_idx: int, selected_ids: list[str]) -> None:
        """Under multi-process launches every rank runs the loop; make sure all ranks selected the same
        items and hold the same adapter (a mismatch means nondeterminism, and silently diverging ranks
        would corrupt DDP training), then wait for the main process's store write."""
        # torch.distributed directly: TRL's trainers may re-create accelerate's state mid-run.
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        digest = ""
        if self.generator is not None:
            from peft import get_peft_model_state_dict

            h = hashlib.sha256()
            for name, tensor in sorted(get_peft_model_state_dict(self.generator.model).items()):
                h.update(name.encode())
                h.update(tensor.detach().float().cpu().numpy().tobytes())
            digest = h.hexdigest()
        views: list = [None] * dist.get_world_size()
        dist.all_gather_object(views, (dist.get_rank(), selected_ids, digest))
        if len({(tuple(ids), d) for _, ids, d in views}) != 1:
            raise RuntimeError(f"round {round_idx}: processes disagree on the selection or the adapter: {views}")
        log_event("ranks_agree", run=self.run_id, round=round_idx, processes=len(views), adapter=digest[:12] or "none")
        dist.barrier()  # the main process has written the round; nobody races ahead of the store

    def _restore_rows(self, start: int, latest) -> list[dict]:
        """Result rows of stored rounds ``0..start`` missing from results.jsonl: a run killed between
        saving a round and logging it, or one resumed from the Hub into a fresh folder. A round's
        row is rebuilt from its saved state (which holds the row's measurements)."""
        if not self.is_main:
            return []
        try:
            logged = {r["round"] for r in self.results.rows() if r.get("method") == self.method and r.get("seed") == self.seed}
        except FileNotFoundError:
            logged = set()
        missing = [r for r in range(start + 1) if r not in logged]
        stored = set(self.store.revisions(self.run_id)) if missing != [start] else {latest.revision}
        rows = []
        for r in missing:
            if revision_name(self.run_id, r) not in stored:
                continue
            rec = latest if r == start else self.store.load_round(self.run_id, r)
            extra = {k: v for k, v in rec.state.items() if k not in _STATE_ONLY}
            rows.append(self._row(r, rec.datasets["labeled"], rec.state["accuracy"], {**extra, "revision": rec.revision}))
            log_event("restored_row", run=self.run_id, round=r)
        return rows

    def _row(self, round_idx: int, labeled: Dataset, acc: float, extra: dict) -> dict:
        n_syn = sum(1 for s in labeled["source"][:] if s == "synthetic")
        return {
            "experiment": self.cfg.name, "dataset": self.task.spec.name, "method": self.method, "strategy": self.strategy_name,
            "seed": self.seed, "round": round_idx, "labeled": len(labeled), "real_labeled": len(labeled) - n_syn,
            "synthetic_labeled": n_syn, "pool_size": self.R, "budget": self.budget,
            "step_percent": self.step_percent(round_idx),
            "labeled_percent": 100.0 * len(labeled) / self.R, "accuracy": acc, "notes": list(self.task.notes),
            "lock": lock_digest(), **extra,
        }

    def run(self) -> list[dict]:
        cfg = self.cfg
        need = set(self.strategy.requires) | set(self.shared.need)
        syn_features = datasets.Features({**self.real_pool.features, "prompt": datasets.Value("string"), "generator_revision": datasets.Value("string"), "round": datasets.Value("int64")})
        labeled_features = datasets.Features({**self.real_pool.features, "round_acquired": datasets.Value("int64")})
        start = self.store.latest_round(self.run_id)
        rows: list[dict] = []
        if start is None:
            rng_order = self.real_pool.shuffle(seed=_derive_seed(self.seed, "initial"))
            labeled = rng_order.select(range(self.initial_size)).map(lambda r: {"round_acquired": 0}, features=labeled_features)
            synthetic = Dataset.from_dict({k: [] for k in syn_features}, features=syn_features)
            if self.generative:
                self._setup_generator(None, "base")
            trainer, acc, lab_out, cand_out, times = self._train(labeled, self._candidates(labeled, synthetic), 0, need=need)
            state = {"accuracy": acc, "recipe_hash": recipe_hash(cfg), "recipe": cfg.to_dict(), "method": self.method, "seed": self.seed, **times}
            rev = self._save(0, labeled, synthetic, state)
            if self.generator is not None:  # round 1 generates with round 0's (saved) adapter
                self.generator.revision = rev
            row = self._row(0, labeled, acc, {**times, "revision": rev})
            if self.is_main:
                self.results.append(row)
            rows.append(row)
            log_event("round", run=self.run_id, round=0, labeled=len(labeled), accuracy=acc, **times)
            first = 1
            if self.progress is not None:
                self.progress.advance()
        else:
            rec = self.store.load_round(self.run_id, start)
            if rec.state.get("recipe_hash") != recipe_hash(cfg):
                raise ConfigError("output.output_dir", f"the store already holds run {self.run_id} of a different recipe", "use a new output_dir, or resume with the recipe saved in the run folder")
            labeled = rec.datasets["labeled"]
            synthetic = rec.datasets["synthetic_pool"]
            if len(synthetic) == 0:
                synthetic = Dataset.from_dict({k: [] for k in syn_features}, features=syn_features)
            if "synthetic_share" in rec.state:
                self._synthetic_share = rec.state["synthetic_share"]
            log_event("resume", run=self.run_id, from_round=start, labeled=len(labeled))
            for row in self._restore_rows(start, rec):
                self.results.append(row)
                rows.append(row)
            if self.progress is not None:
                self.progress.advance(start + 1)
            if start >= self.num_rounds:  # already finished: no classifier to retrain, no generator to load
                return rows
            if self.generative:
                self._setup_generator(rec.adapter_path, rec.revision)
            trainer, acc, lab_out, cand_out, _ = self._train(labeled, self._candidates(labeled, synthetic), start, need=need)
            first = start + 1

        for r in range(first, self.num_rounds + 1):
            t_round = time.perf_counter()
            extra: dict[str, Any] = {}
            if self.generative:
                synthetic, gen_info = self._generate(r, labeled, synthetic)
                extra.update({k: v for k, v in gen_info.items() if k != "dropped"})
                extra["dropped"] = sum(gen_info["dropped"].values())
                extra["dropped_by_reason"] = gen_info["dropped"]
                # The classifier of the previous round scores the new candidates too.
                candidates = self._candidates(labeled, synthetic)
                _, _, lab_out, cand_out, _ = self._infer_only(trainer, labeled, candidates, need)
            else:
                candidates = self._candidates(labeled, synthetic)
            n = self.round_budget(r, len(labeled))
            if len(candidates) == 0:
                log_event("stop", run=self.run_id, round=r, reason="no candidates left")
                break
            self._phase(f"round {r}: acquire {n} of {len(candidates)}")
            t = time.perf_counter()
            state = AcquisitionState(unlabeled=cand_out, labeled=lab_out, seed=_derive_seed(self.seed, r, "acquire"), metadata={"round": r})
            picked, sel_info = self._select(state, candidates, n)
            extra["acquire_s"] = time.perf_counter() - t
            extra.update(sel_info)
            chosen = candidates.select(picked)
            self._phase(f"round {r}: annotate {len(chosen)}")
            labels = self._annotate(chosen)
            keep = [i for i, l in enumerate(labels) if l is not None]
            extra["skipped_by_oracle"] = len(labels) - len(keep)
            chosen = chosen.select(keep).map(lambda row, i: {"label": labels[keep[i]], "round_acquired": r}, with_indices=True, features=labeled_features)
            # ``budget`` is the nominal b; the last round takes the remainder, so record the real count.
            extra["acquired"] = len(chosen)
            extra["acquired_synthetic"] = sum(1 for s in chosen["source"][:] if s == "synthetic")
            extra["selected_ids"] = chosen["id"][:]
            labeled = concatenate_datasets([labeled, chosen])
            trainer, acc, lab_out, cand_out, times = self._train(labeled, self._candidates(labeled, synthetic), r, need=need)
            extra.update(times)
            if self.generative and cfg.rl.enabled:
                extra.update(self._self_inform(r, trainer, lab_out))
            extra["round_s"] = time.perf_counter() - t_round
            state_d = {"accuracy": acc, "recipe_hash": recipe_hash(cfg), "recipe": cfg.to_dict(), "method": self.method, "seed": self.seed, "synthetic_share": self._synthetic_share, **extra}
            rev = self._save(r, labeled, synthetic, state_d)
            self._check_ranks_agree(r, extra["selected_ids"])
            if self.generator is not None:
                self.generator.revision = rev
            row = self._row(r, labeled, acc, {**extra, "revision": rev})
            if self.is_main:
                self.results.append(row)
            rows.append(row)
            log_event(
                "round", run=self.run_id, round=r, labeled=len(labeled), accuracy=acc,
                **{k: v for k, v in extra.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            )
            if self.progress is not None:
                self.progress.advance()
        return rows

    def _pool_pass(self, trainer: Classifier, labeled: Dataset, candidates: Dataset, need: set[str]) -> tuple[PoolOutputs, PoolOutputs]:
        """One inference pass over L and the candidates, split back into (labeled, candidates) outputs."""
        cols = self._text_cols()
        both = concatenate_datasets([labeled.select_columns(cols), candidates.select_columns(cols)]) if len(candidates) else labeled.select_columns(cols)
        out = trainer.pool_outputs(both, grad_embeddings="grad_embeddings" in need)
        lab_out = out.select(list(range(len(labeled))))
        cand_out = out.select(list(range(len(labeled), len(both))))
        if "pretrained_embeddings" in need:
            enc = self.shared.pretrained
            lab_out.pretrained_embeddings = enc.embed_dataset(labeled)
            cand_out.pretrained_embeddings = enc.embed_dataset(candidates)
            enc.save()
        return lab_out, cand_out

    def _infer_only(self, trainer: Classifier | None, labeled: Dataset, candidates: Dataset, need: set[str]):
        if trainer is None:  # cached model: retrain (identical result) to score the new candidates
            return self._train(labeled, candidates, -1, need=need)
        lab_out, cand_out = self._pool_pass(trainer, labeled, candidates, need)
        return trainer, None, lab_out, cand_out, {}


class _Progress:
    """A rich progress bar over all rounds of all trials (main process only)."""

    def __init__(self, total: int, enabled: bool):
        self._p = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
            self._task = self._p.add_task("rounds", total=total)

    def __enter__(self):
        if self._p is not None:
            self._p.start()
        return self

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.stop()

    def describe(self, text: str) -> None:
        if self._p is not None:
            self._p.update(self._task, description=text)

    def advance(self, n: int = 1) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)


def _check_initial_set(cfg: ExperimentConfig, task: TaskData) -> None:
    """Refuse a pool whose initial labeled set cannot hold one row per class (the first model would be
    trained on a subset of the classes, every later round measured against a broken start)."""
    R = pool_size(task, cfg.data.pool_fraction)
    initial = max(1, int(round(cfg.loop.initial_fraction * min(R, len(task.train)))))
    if initial < task.spec.num_labels:
        raise ConfigError(
            "loop.initial_fraction",
            f"the initial labeled set has {initial} row(s) of a {min(R, len(task.train))}-row pool, fewer than the task's {task.spec.num_labels} classes",
            "raise loop.initial_fraction or data.pool_fraction (or use a larger dataset)",
        )


class Experiment:
    """All trials of a recipe: every strategy × every seed, then the report."""

    def __init__(self, cfg: ExperimentConfig, *, show_progress: bool = True, force: bool = False, from_round: int | None = None):
        from accelerate import PartialState

        self.cfg = cfg
        # Without an accelerator, torchrun-launched ranks (accelerate launch --multi_gpu) only form a
        # gloo group when the state is created with cpu=True.
        self.state = PartialState(cpu=not torch.cuda.is_available())
        self.is_main = self.state.is_main_process
        self.output_dir = Path(cfg.output.output_dir)
        self.show_progress = show_progress and self.is_main
        self.force = force
        self.from_round = from_round
        self.pending_pushes: list[str] = []  # revisions a HubStore could not push by the end

    def run(self) -> list[dict]:
        """Check and lock the run folder (main process), then run every trial and write the report."""
        if not self.is_main:
            return self._run(self._load_task())
        check_output_dir(self.output_dir, force=self.force)
        task = self._load_task()  # bad data is refused before the folder is touched
        with hold_run_folder(self.output_dir):
            self._check_saved_recipe()
            if self.from_round is not None:
                self._rewind(self.from_round)
            return self._run(task)

    def _load_task(self) -> TaskData:
        """The task, its data checked (before anything is written or any model loads)."""
        datasets.disable_progress_bars()
        task = load_task(self.cfg.data)
        task.test = order_for_eval(task.test)
        _check_initial_set(self.cfg, task)
        return task

    def _rewind(self, round_idx: int) -> None:
        """``resume --from-round N``: set the rounds after N aside in every run of the store and drop
        their result rows, so each trial continues from its round N."""
        from .store import LocalStore

        store = make_store(self.cfg.store, self.output_dir)
        local = getattr(store, "local", store)
        if not isinstance(local, LocalStore):
            raise ConfigError("--from-round", "needs the run's local round store", "resume from the run folder")
        for run_id in local.runs():
            moved = local.discard_after(run_id, round_idx)
            if moved:
                log_event("rewound", run=run_id, to_round=round_idx, set_aside=json.dumps(moved))
        ResultsLog(self.output_dir).discard_after(round_idx)

    def _check_saved_recipe(self) -> None:
        """Refuse, before writing anything, a folder whose saved recipe is a different experiment."""
        saved = self.output_dir / "recipe.yaml"
        if not saved.is_file():
            return
        from .config import load_recipe

        try:
            previous = load_recipe(saved)
        except SignalHFError as e:
            raise ConfigError("output.output_dir", f"{saved} is not a readable recipe ({e})", "use a new output_dir") from None
        if recipe_hash(previous) != recipe_hash(self.cfg):
            raise ConfigError(
                "output.output_dir", f"{self.output_dir} holds a run of a different recipe (its recipe.yaml)",
                f"use a new output_dir, or continue that run with `signal-hf resume {self.output_dir}`",
            )

    def _run(self, task: TaskData) -> list[dict]:
        cfg = self.cfg
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:
            recipe_file = self.output_dir / "recipe.yaml"
            recipe_file.with_suffix(".tmp").write_text(to_yaml(cfg))
            recipe_file.with_suffix(".tmp").replace(recipe_file)
        for note in task.notes:
            log_event("data", note=json.dumps(note))
        store = make_store(cfg.store, self.output_dir) if self.is_main else _NullStore(make_store(cfg.store, self.output_dir))
        if self.is_main:
            # Every stored round is checked against its manifest before any trial continues from it.
            from .store import LocalStore

            local = getattr(store, "local", store)
            if isinstance(local, LocalStore):
                for run_id in local.runs():
                    local.verify_run(run_id)
        if self.is_main and hasattr(store, "push_pending"):
            # A HubStore run killed during a push: upload those rounds now, not only at the next
            # save (a run resumed after its last round has no next save).
            store.push_pending()
        results = ResultsLog(self.output_dir)
        shared = _Shared()
        shared.need = frozenset().union(*(get_strategy(s, cfg.acquisition).requires for s in cfg.acquisition.strategies))
        if "pretrained_embeddings" in shared.need:
            # BERT-KM clusters the *pretrained* encoder's mean-pooled embeddings (its reference does).
            c = cfg.classifier
            shared.pretrained = get_encoder(c.model_name_or_path, "mean", c.max_length)
        trials = [Trial(cfg, task, s, seed, store=store, results=results, shared=shared, is_main=self.is_main) for seed in cfg.loop.seeds for s in cfg.acquisition.strategies]
        total = sum(t.num_rounds + 1 for t in trials)
        log_event("experiment", name=cfg.name, dataset=task.spec.name, pool=trials[0].R, budget=trials[0].budget, trials=len(trials), rounds=total)
        rows: list[dict] = []
        with _Progress(total, self.show_progress) as progress:
            current_seed = None
            for trial in trials:
                if trial.seed != current_seed:  # cache entries are per seed; trials run seed by seed
                    shared.trained.clear()
                    current_seed = trial.seed
                trial.progress = progress
                rows.extend(trial.run())
        self.state.wait_for_everyone()
        if self.is_main and hasattr(store, "pending"):
            self.pending_pushes = [revision_name(r, i) for r, i in store.pending()]
        if self.is_main and cfg.output.plot:
            table, png = write_report(self.output_dir, title=f"{cfg.name}: {task.spec.name}, pool {cfg.data.pool_fraction:.2%}", notes=task.notes)
            self.table, self.plot_path = table, png
        return rows


class _NullStore(RoundStore):
    """Non-main processes read the main process's store but never write (it writes after a barrier)."""

    def __init__(self, inner: RoundStore):
        self.inner = inner

    def save_round(self, run_id, round_idx, *, datasets, state, adapter_dir=None, message=""):
        return revision_name(run_id, round_idx)

    def load_round(self, run_id, revision=None):
        return self.inner.load_round(run_id, revision)

    def latest_round(self, run_id):
        return self.inner.latest_round(run_id)

    def revisions(self, run_id):
        return self.inner.revisions(run_id)

    def runs(self):
        return self.inner.runs()


def run_experiment(cfg: ExperimentConfig, *, show_progress: bool = True, force: bool = False, from_round: int | None = None) -> Experiment:
    """Run (or continue) the experiment of ``cfg`` in ``cfg.output.output_dir``. ``force`` writes into
    a folder that holds other files too; ``from_round`` continues every trial from that stored round."""
    exp = Experiment(cfg, show_progress=show_progress, force=force, from_round=from_round)
    exp.rows = exp.run()
    return exp
