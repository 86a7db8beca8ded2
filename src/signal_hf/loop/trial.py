"""One trial: a method and a seed, run round by round through the stages, resumable from its store.

Every random choice is seeded from (trial seed, round), so a run resumed from its last complete
round makes the same selections as an uninterrupted one.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch
from datasets import Dataset

from ..acquisition import get_strategy
from ..config import ExperimentConfig
from ..data import TaskData, sample_pool
from ..errors import ConfigError
from ..oracles import make_oracle
from ..results import ResultsLog
from ..store import RoundStore
from ..tracking import open_tracker
from ..types import MCDropout
from . import stages
from .distributed import check_ranks_agree
from .methods import parse_method
from .records import log_event, recipe_hash, restore_rows, result_row
from .schedule import Schedule
from .state import RoundContext, RoundState, derive_seed, labeled_features, synthetic_features_of
from .training import Retrainer, SharedCache

__all__ = ["Trial"]


class Trial:
    """One (method, seed) run of the round loop; ``strategy`` is an ``acquisition.strategies`` entry."""

    def __init__(self, cfg: ExperimentConfig, task: TaskData, strategy: str, seed: int, *, store: RoundStore, results: ResultsLog, shared: SharedCache, progress=None, is_main: bool = True):
        method = parse_method(strategy, cfg)
        self.method, self.seed, self.results, self.progress, self.is_main = method, seed, results, progress, is_main
        self.run_id = f"{method.name}-seed{seed}"
        real_pool = sample_pool(task, cfg.data.pool_fraction, seed)
        self.schedule = Schedule.from_config(cfg.loop, len(real_pool), generative=method.generate)
        strat = get_strategy(method.strategy, cfg.acquisition)
        workdir = Path(cfg.output.output_dir) / "work" / self.run_id
        acq = cfg.acquisition
        mc = MCDropout(acq.bald_mc_samples, acq.bald_dropout, derive_seed(seed, "mc-dropout")) if "mc_probs" in strat.requires else None
        retrainer = Retrainer(cfg.classifier, task, seed, workdir=workdir, shared=shared, need=set(strat.requires) | set(shared.need), phase=self._phase, mc_dropout=mc)
        self.ctx = RoundContext(
            cfg=cfg, task=task, method=method, seed=seed, run_id=self.run_id, real_pool=real_pool, schedule=self.schedule,
            strategy=strat, retrainer=retrainer, store=store, real_oracle=make_oracle(cfg.oracle.real, task.spec, cfg.oracle),
            workdir=workdir, phase=self._phase,
        )

    @property
    def num_rounds(self) -> int:
        return self.schedule.num_rounds

    def run(self) -> list[dict]:
        """Every round not yet stored (round 0 first), each saved before its row is logged."""
        self._open_tracker()
        try:
            return self._run()
        finally:
            if self.ctx.tracker is not None:
                self.ctx.tracker.finish()
                self.ctx.tracker = None

    def _open_tracker(self) -> None:
        """``output.report_to``'s run for this trial (main process), also fed the ``finetune``
        backend's training curve: round r's steps start at r · ``classifier.max_steps``."""
        self.ctx.tracker = tracker = open_tracker(self.ctx.cfg, self.run_id, group=self.method.name) if self.is_main else None
        if tracker is not None:
            steps = max(self.ctx.cfg.classifier.max_steps, 1)
            self.ctx.retrainer.callbacks = lambda r: [tracker.callback("train/classifier/", step_offset=r * steps)]

    def _run(self) -> list[dict]:
        rows: list[dict] = []
        state = self._resume(rows)
        if state is None:
            state = self._round(self._initial_state(), rows)
        elif state.round < self.num_rounds and not state.stopped_by:
            state, _ = stages.retrain(self.ctx, state)  # the stored round's M, to score the next round
            if self.ctx.cfg.loop.stop_when:  # and its stop-set predictions, for the next round's kappa
                state = replace(state, stop_predictions=stages.real_pool_outputs(self.ctx, state, "probs")[0].argmax(-1))
        while state is not None and state.round < self.num_rounds and not state.stopped_by:
            state = self._round(state.next_round(), rows)
        return rows

    def _stages(self, round_idx: int) -> list:
        m, stopping = self.method, bool(self.ctx.cfg.loop.stop_when)
        if round_idx == 0:  # the seeded random initial set: nothing to generate or select
            steps = ((stages.retrain, True), (stages.check_stop, stopping))
        else:
            steps = (
                (stages.generate, m.generate), (stages.score, True), (stages.select, True), (stages.annotate, True),
                (stages.retrain, True), (stages.self_inform, m.self_inform), (stages.probe, m.generate), (stages.check_stop, stopping),
            )
        return [stage for stage, on in steps if on]

    def _round(self, state: RoundState, rows: list[dict]) -> RoundState | None:
        """Run the stages of ``state.round``, save the round, log its row; ``None`` if the trial stops."""
        t0, metrics = time.perf_counter(), {}
        for stage in self._stages(state.round):
            state, stage_metrics = stage(self.ctx, state)
            metrics.update(stage_metrics)
            if state.stop:
                log_event("stop", run=self.run_id, round=state.round, reason=state.stop)
                return None
        if state.round:
            metrics["round_s"] = time.perf_counter() - t0
        rev = stages.save(self.ctx, state, metrics)
        if state.round:
            check_ranks_agree(self.run_id, state.round, metrics["selected_ids"], self.ctx.generator)
        if state.stopped_by:
            log_event("stop", run=self.run_id, round=state.round, reason=",".join(state.stopped_by))
        if self.ctx.generator is not None:  # the next round generates with this round's (saved) adapter
            self.ctx.generator.revision = rev
        row = result_row(self.ctx, state.round, state.labeled, state.model.accuracy, {**metrics, "revision": rev})
        self._record(row, rows)
        numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        log_event("round", run=self.run_id, round=state.round, labeled=len(state.labeled), accuracy=state.model.accuracy, **numeric)
        if state.round == 1 and "round_s" in metrics:  # a first estimate, once a round has been measured
            left = self.num_rounds - 1
            log_event("estimate", run=self.run_id, seconds_per_round=metrics["round_s"], rounds_left=left, trial_left_s=metrics["round_s"] * left)
        if self.progress is not None:
            self.progress.advance()
        return state

    def _record(self, row: dict, rows: list[dict]) -> None:
        """Append a row to results.jsonl (main process) and the tracker: the tracker gets exactly the
        rows this process writes, so a resumed run never logs a round twice."""
        if self.is_main:
            self.results.append(row)
        if self.ctx.tracker is not None:
            self.ctx.tracker.log(row, row["round"])
        rows.append(row)

    def _initial_state(self) -> RoundState:
        pool = self.ctx.real_pool
        order = pool.shuffle(seed=derive_seed(self.seed, "initial"))
        labeled = order.select(range(self.schedule.initial_size)).map(lambda r: {"round_acquired": 0}, features=labeled_features(pool))
        if self.method.generate:
            self._load_generator(None, "base")
        return RoundState(0, labeled, self._empty_synthetic(), self.ctx.cfg.loop.synthetic_share)

    def _empty_synthetic(self) -> Dataset:
        features = synthetic_features_of(self.ctx.real_pool)
        return Dataset.from_dict({k: [] for k in features}, features=features)

    def _resume(self, rows: list[dict]) -> RoundState | None:
        """The last stored round as a state (its rows restored where results.jsonl lacks them), or ``None``."""
        ctx = self.ctx
        start = ctx.store.latest_round(self.run_id)
        if start is None:
            return None
        rec = ctx.store.load_round(self.run_id, start)
        if rec.state.get("recipe_hash") != recipe_hash(ctx.cfg):
            raise ConfigError("output.output_dir", f"the store already holds run {self.run_id} of a different recipe", "use a new output_dir, or resume with the recipe saved in the run folder")
        synthetic = rec.datasets["synthetic_pool"]
        state = RoundState(
            start, rec.datasets["labeled"], synthetic if len(synthetic) else self._empty_synthetic(), rec.state.get("synthetic_share", ctx.cfg.loop.synthetic_share),
            stopped_by=tuple(rec.state.get("stopped_by", ())), kappas=tuple(rec.state.get("stop_kappas", ())),
        )
        log_event("resume", run=self.run_id, from_round=start, labeled=len(state.labeled))
        for row in restore_rows(ctx, self.results, start, rec) if self.is_main else []:
            self._record(row, rows)
        if self.progress is not None:
            self.progress.advance(start + 1)
        if start < self.num_rounds and not state.stopped_by and self.method.generate:  # finished runs load no generator
            self._load_generator(rec.adapter_path, rec.revision)
        return state

    def _load_generator(self, adapter_path: Path | None, revision: str) -> None:
        from ..generation import Generator

        cfg = self.ctx.cfg
        self._phase("load generator")
        # A fresh LoRA's random init is seeded too, so the same recipe and seed give the same run
        # whatever ran before in the process (RL trains that init from round 1 on).
        with torch.random.fork_rng():
            torch.manual_seed(derive_seed(self.seed, "lora-init"))
            generator = Generator.from_pretrained(
                cfg.generator.model_name_or_path, task=self.ctx.task.spec, config=cfg.generator,
                revision=cfg.generator.revision, adapter=adapter_path,
            )
        generator.revision = revision
        self.ctx.generator = generator
        self.ctx.synthetic_oracle = make_oracle(cfg.oracle.synthetic, self.ctx.task.spec, cfg.oracle)

    def _phase(self, text: str) -> None:
        if self.progress is not None:
            self.progress.describe(f"{self.run_id}: {text}")
