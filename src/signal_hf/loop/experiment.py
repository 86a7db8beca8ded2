"""The experiment runner: every method × every seed of a recipe, in one locked run folder, then
the report."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import torch

from ..acquisition import get_strategy
from ..classifier import order_for_eval
from ..config import ExperimentConfig, to_yaml
from ..data import TaskData, load_task, pool_size
from ..encoder import get_encoder
from ..errors import ConfigError, SignalHFError
from ..results import ResultsLog, write_report
from ..run_folder import check_output_dir, hold_run_folder
from ..store import RoundStore, make_store, revision_name
from ..tracking import require_backend
from .methods import Method, parse_method
from .records import log_event, recipe_hash
from .training import SharedCache
from .trial import Trial

__all__ = ["Experiment", "run_experiment"]


def _check_unique_names(methods: list[Method]) -> None:
    names = [m.name for m in methods]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"acquisition.strategies[{i}]", f"runs {name!r} a second time (with generator.enabled, signal is signal-gen)", "remove the duplicate")


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
        require_backend(self.cfg.output.report_to)  # a missing tracker package, before anything is written
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
        from ..store import LocalStore

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
        from ..config import load_recipe

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
            from ..store import LocalStore

            local = getattr(store, "local", store)
            if isinstance(local, LocalStore):
                for run_id in local.runs():
                    local.verify_run(run_id)
        if self.is_main:
            # A HubStore run killed during a push: upload those rounds now, not only at the next
            # save (a run resumed after its last round has no next save).
            store.push_pending()
        results = ResultsLog(self.output_dir)
        shared = SharedCache()
        methods = [parse_method(s, cfg) for s in cfg.acquisition.strategies]
        _check_unique_names(methods)
        # MC-dropout passes (BALD) cost T inference passes on finetune: only the trials that read them
        # run them (BALD's round 0 is then fitted apart from the shared one, with the same seed).
        shared.need = frozenset().union(*(get_strategy(m.strategy, cfg.acquisition).requires for m in methods)) - {"mc_probs"}
        if "pretrained_embeddings" in shared.need:
            # BERT-KM clusters the *pretrained* encoder's mean-pooled embeddings (its reference does).
            c = cfg.classifier
            shared.pretrained = get_encoder(c.model_name_or_path, "mean", c.max_length)
        trials = [Trial(cfg, task, s, seed, store=store, results=results, shared=shared, is_main=self.is_main) for seed in cfg.loop.seeds for s in cfg.acquisition.strategies]
        total = sum(t.num_rounds + 1 for t in trials)
        log_event("experiment", name=cfg.name, dataset=task.spec.name, pool=trials[0].schedule.pool_size, budget=trials[0].schedule.budget, trials=len(trials), rounds=total)
        rows: list[dict] = []
        with _Progress(total, self.show_progress) as progress:
            current_seed = None
            for trial in trials:
                if trial.seed != current_seed:  # cache entries are per seed; trials run seed by seed
                    shared.fitted.clear()
                    current_seed = trial.seed
                trial.progress = progress
                rows.extend(trial.run())
        self.state.wait_for_everyone()
        if self.is_main:
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
