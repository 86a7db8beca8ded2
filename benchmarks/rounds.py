"""The cost of one active-learning round on the demo recipes, phase by phase.

Each measured run is the real round loop (:func:`signal_hf.loop.run_experiment`) on a recipe from
``recipes/`` with a few overrides, all recorded in the output: one seed, one strategy, a reduced
test set, and ``max_fraction`` / ``signal_max_fraction`` set so that exactly one round follows
round 0 (the initial training). The phases are timed by wrapping the public methods the loop calls
(restored afterwards):

=================  ======================================================================
phase              what is timed
=================  ======================================================================
generator load     ``Generator.from_pretrained`` (base model + fresh LoRA)
generation         ``Generator.generate_raw`` (sampling; new tokens counted → tokens/s)
dedup/filter       ``Generator.parse_batch`` (cleaning, exact and near-duplicate checks)
inference          the classifier's ``pool_outputs`` outside the RL step (the shared pass)
acquisition        the loop's own ``acquire_s`` (strategy selection)
annotation         ``Oracle.annotate`` of the synthetic items (model oracle)
classifier setup   the loop's ``train_s`` minus the fit: loading the checkpoint, tokenising
training           the fit: ``ClassifierTrainer.train`` (``finetune``) or ``fit`` (``probe``/``setfit``,
                   including the encoding of texts not seen before)
evaluation         the classifier's ``accuracy`` on the test subset
RL step            ``signal_hf.rl.optimize_generator`` (rollouts, reward incl. its own
                   inference, one optimiser step)
RL inference       the classifier passes inside the RL reward (part of the RL step)
store write        ``RoundStore.save_round`` (datasets, state, adapter)
=================  ======================================================================

Events are assigned to rounds by the loop's ``round`` log event, which closes each round.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


from .common import PeakRSS, fmt_mb, fmt_s

__all__ = ["PhaseRecorder", "run_rounds", "rounds_table", "ensure_annotator", "PHASES"]

logger = logging.getLogger("benchmarks")

#: Reported phases, in round order.
PHASES = ("generator load", "generation", "dedup/filter", "inference", "acquisition", "annotation", "classifier setup",
          "training", "evaluation", "RL step", "RL inference", "store write")


class PhaseRecorder:
    """Collects ``(round, phase, seconds, extra)`` events from wrapped methods.

    ``self.round`` advances when the loop logs its ``round`` event; a call made while another
    wrapped call is running records its enclosing phases in ``parents`` (the RL reward's inference
    pass is then not counted as the round's inference).
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.round = 0
        self._stack: list[str] = []

    def add(self, phase: str, seconds: float, parents: tuple[str, ...], **extra: float) -> None:
        self.events.append({"round": self.round, "phase": phase, "seconds": seconds, "parents": parents, **extra})

    @contextmanager
    def span(self, phase: str) -> Iterator[dict[str, float]]:
        """Time the block as ``phase``; the yielded dict collects numeric extras for the event."""
        parents = tuple(self._stack)
        self._stack.append(phase)
        extra: dict[str, float] = {}
        t = time.perf_counter()
        try:
            yield extra
        finally:
            dt = time.perf_counter() - t
            self._stack.pop()
            self.add(phase, dt, parents, **extra)

    def timed(self, phase: str, fn: Callable) -> Callable:
        """``fn`` wrapped in :meth:`span`."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.span(phase):
                return fn(*args, **kwargs)

        return wrapper

    def by_round(self) -> dict[int, dict[str, dict[str, float]]]:
        """round → phase → summed ``seconds`` (+ summed numeric extras), top-level calls only for
        phases that also run nested (inference inside the RL reward is kept apart as ``RL inference``)."""
        out: dict[int, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
        for ev in self.events:
            phase = ev["phase"]
            if phase == "inference" and "RL step" in ev["parents"]:
                phase = "RL inference"
            elif ev["parents"] and phase != "inference":
                continue
            agg = out[ev["round"]][phase]
            agg["seconds"] += ev["seconds"]
            agg["calls"] += 1
            for key, val in ev.items():
                if key not in ("round", "phase", "seconds", "parents") and isinstance(val, (int, float)):
                    agg[key] += val
        return {r: {p: dict(v) for p, v in phases.items()} for r, phases in out.items()}


@contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    # Classes: take the raw attribute (a classmethod stays a classmethod when restored).
    own = isinstance(owner, type) and name in vars(owner)
    old = vars(owner)[name] if own else getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if own or not isinstance(owner, type):
            setattr(owner, name, old)
        else:
            delattr(owner, name)


@contextmanager
def instrument(rec: PhaseRecorder) -> Iterator[PhaseRecorder]:
    """Wrap the methods the loop calls (see the module docstring); restore them on exit."""
    import signal_hf.loop.experiment as experiment_mod
    import signal_hf.loop.trial as trial_mod
    import signal_hf.rl as rl_mod
    from signal_hf.classifier import ClassifierTrainer, ProbeClassifier, SetFitClassifier
    from signal_hf.classifier.base import HeadOnEmbeddings
    from signal_hf.generation.generator import Generator
    from signal_hf.oracles import Oracle

    def sample(self: Generator, prompts: Any, *, seed: int, **kw: Any) -> list:
        with rec.span("generation") as extra:
            out = orig_sample(self, prompts, seed=seed, **kw)
            extra.update(tokens=sum(c.tokens for c in out), completions=len(out), truncated=sum(c.truncated for c in out))
        return out

    def parse_batch(self: Generator, completions: Any, existing_texts: Any = ()) -> list:
        with rec.span("dedup/filter") as extra:
            out = orig_parse_batch(self, completions, existing_texts)
            extra.update(candidates=len(out), kept=sum(1 for fields, _ in out if fields is not None))
        return out

    def log_event(event: str, **fields: Any) -> None:
        orig_log_event(event, **fields)
        if event == "round":
            rec.round = int(fields["round"]) + 1

    def make_store(*a: Any, **kw: Any):
        store = orig_make_store(*a, **kw)
        store.save_round = rec.timed("store write", store.save_round)
        return store

    orig_sample = Generator.sample
    orig_parse_batch = Generator.parse_batch
    orig_log_event = trial_mod.log_event
    orig_make_store = experiment_mod.make_store
    from signal_hf.rl import optimize_generator as orig_optimize

    with ExitStack() as stack:
        enter = stack.enter_context
        enter(_patched(Generator, "from_pretrained", classmethod(rec.timed("generator load", Generator.from_pretrained.__func__))))
        enter(_patched(Generator, "sample", sample))
        enter(_patched(Generator, "parse_batch", parse_batch))
        # Every backend: finetune (the Trainer) and the heads on embeddings (probe, setfit).
        for cls, fit in ((ClassifierTrainer, "train"), (ProbeClassifier, "fit"), (SetFitClassifier, "fit")):
            enter(_patched(cls, fit, rec.timed("training", getattr(cls, fit))))
        for cls in (ClassifierTrainer, HeadOnEmbeddings):
            enter(_patched(cls, "pool_outputs", rec.timed("inference", cls.pool_outputs)))
            enter(_patched(cls, "accuracy", rec.timed("evaluation", cls.accuracy)))
        enter(_patched(rl_mod, "optimize_generator", rec.timed("RL step", orig_optimize)))
        enter(_patched(trial_mod, "log_event", log_event))  # the trial logs each round's line
        enter(_patched(experiment_mod, "make_store", make_store))
        for cls in _subclasses(Oracle):
            if "annotate" in vars(cls):
                enter(_patched(cls, "annotate", rec.timed("annotation", vars(cls)["annotate"])))
        yield rec


def _subclasses(cls: type) -> list[type]:
    out, todo = [], [cls]
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(c.__subclasses__())
    return out


def ensure_annotator(recipe: str, out_dir: Path, *, max_train_samples: int) -> tuple[str, dict[str, Any]]:
    """The annotator folder the generative recipe's model oracle loads: the recipe's own when it
    exists, else a small one trained here (``max_train_samples`` rows; only its speed matters)."""
    from signal_hf.annotator import train_annotator
    from signal_hf.config import load_recipe

    cfg = load_recipe(recipe)
    own = cfg.oracle.annotator_path
    if own and (Path(own) / "config.json").is_file():
        return own, {"annotator": own, "trained_here": False}
    path = out_dir / "annotator"
    if (path / "config.json").is_file():
        return str(path), {"annotator": str(path), "trained_here": False}
    t = time.perf_counter()
    _, acc = train_annotator(cfg, output=str(path), max_train_samples=max_train_samples)
    return str(path), {"annotator": str(path), "trained_here": True, "train_rows": max_train_samples,
                       "test_accuracy": acc, "seconds": time.perf_counter() - t}


def _one_round_overrides(recipe: str, fraction: float, strategy: str, max_test_samples: int, out: Path,
                         extra: list[str]) -> tuple[list[str], dict[str, Any]]:
    from signal_hf.config import load_recipe
    from signal_hf.data import load_task, pool_size

    base = load_recipe(recipe, [f"--data.pool_fraction={fraction}"])
    task = load_task(base.data)
    R = pool_size(task, fraction)
    initial = max(1, int(round(base.loop.initial_fraction * R)))
    budget = max(1, int(round(base.loop.step_fraction * R)))
    # Stop after one round: |L| may grow to exactly initial + budget.
    stop = (initial + budget) / R
    overrides = [
        f"--data.pool_fraction={fraction}", f"--data.max_test_samples={max_test_samples}",
        "--loop.seeds", "0", "--acquisition.strategies", strategy,
        f"--loop.max_fraction={stop!r}", f"--loop.signal_max_fraction={stop!r}",
        f"--output.output_dir={out}", "--output.plot=false", *extra,
    ]
    return overrides, {"pool": R, "initial_labeled": initial, "budget": budget}


def run_rounds(
    recipes: list[str],
    fractions: list[float],
    *,
    out_dir: str | Path,
    strategy: str = "signal",
    max_test_samples: int = 100,
    annotator_samples: int = 512,
    extra_overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Run round 0 and one round of every recipe at every pool fraction; time the phases.

    Args:
        recipes: recipe files (``recipes/demo.yaml``, ``recipes/demo_signal.yaml``).
        fractions: real-pool fractions of the SST-2 train split (0.001 = 67 rows, 0.01 = 673).
        out_dir: scratch folder (each run gets a fresh sub-folder; its store is written there).
        strategy: the one acquisition strategy run (``signal`` → ``signal-gen`` when the recipe
            enables the generator).
        max_test_samples: test subset the evaluation runs on.
        annotator_samples: train rows of the annotator trained when the generative recipe's own
            annotator folder does not exist.
        extra_overrides: further recipe overrides (``--section.key=value``), applied to every run.
    """
    from signal_hf.config import load_recipe
    from signal_hf.loop import run_experiment

    out_dir = Path(out_dir)
    runs: list[dict[str, Any]] = []
    setup: dict[str, Any] = {}
    for recipe in recipes:
        generative = load_recipe(recipe).generator.enabled
        extra = list(extra_overrides or [])
        if generative:
            ann, info = ensure_annotator(recipe, out_dir, max_train_samples=annotator_samples)
            setup[f"annotator ({Path(recipe).name})"] = info
            extra.append(f"--oracle.annotator_path={ann}")
        for fraction in fractions:
            run_dir = out_dir / f"{Path(recipe).stem}-{fraction:g}"
            shutil.rmtree(run_dir, ignore_errors=True)  # never resume: every phase must run
            overrides, sizes = _one_round_overrides(recipe, fraction, strategy, max_test_samples, run_dir, extra)
            cfg = load_recipe(recipe, overrides)
            rec = PhaseRecorder()
            logger.info("rounds: %s at pool fraction %g (%d rows)", recipe, fraction, sizes["pool"])
            with instrument(rec), PeakRSS() as mem:
                t = time.perf_counter()
                exp = run_experiment(cfg, show_progress=False)
                total = time.perf_counter() - t
            phases = rec.by_round()
            for row in exp.rows:
                r = int(row["round"])
                ph = phases.setdefault(r, {})
                if "acquire_s" in row:
                    ph["acquisition"] = {"seconds": float(row["acquire_s"]), "calls": 1.0}
                if "train_s" in row and "training" in ph:
                    # the loop's train_s also covers building the trainer (model load, tokenisation)
                    ph["classifier setup"] = {"seconds": float(row["train_s"]) - ph["training"]["seconds"], "calls": 1.0}
            runs.append({
                "recipe": recipe, "pool_fraction": fraction, **sizes, "strategy": strategy, "generative": generative,
                "overrides": overrides, "total_s": total, "peak_rss_bytes": mem.peak_bytes,
                "rows": [{k: v for k, v in row.items() if k not in ("notes", "selected_ids", "revision")} for row in exp.rows],
                "phases": {str(r): p for r, p in sorted(phases.items())},
            })
    return {"config": {"recipes": recipes, "fractions": fractions, "strategy": strategy, "max_test_samples": max_test_samples,
                       "extra_overrides": list(extra_overrides or [])}, "setup": setup, "runs": runs}


def rounds_table(report: dict[str, Any], round_idx: int = 1):
    """Rich table: one column per (recipe, pool), one row per phase of round ``round_idx``."""
    from rich.table import Table

    table = Table(title=f"One active-learning round (round {round_idx}; round 0 = initial training), seconds per phase")
    table.add_column("phase")
    runs = report["runs"]
    for run in runs:
        table.add_column(f"{Path(run['recipe']).stem}\npool {run['pool']} (b={run['budget']})", justify="right")
    extra_phases = sorted({p for run in runs for p in run["phases"].get(str(round_idx), {}) if p not in PHASES})
    for phase in (*PHASES, *extra_phases):
        cells = []
        for run in runs:
            got = run["phases"].get(str(round_idx), {}).get(phase)
            if got is None:
                cells.append("—")
                continue
            cell = fmt_s(got["seconds"])
            if phase == "generation" and got.get("tokens"):
                cell += f"\n{got['tokens']:.0f} tok, {got['tokens'] / got['seconds']:.1f} tok/s"
            if phase == "dedup/filter" and got.get("candidates"):
                cell += f"\nkept {got['kept']:.0f}/{got['candidates']:.0f}"
            cells.append(cell)
        if any(c != "—" for c in cells):
            table.add_row(phase, *cells)
    table.add_row("round total (wall)", *[fmt_s(_round_total(run, round_idx)) for run in runs])
    table.add_row("whole run (rounds 0-1, loads)", *[fmt_s(run["total_s"]) for run in runs])
    table.add_row("peak RSS increase", *[fmt_mb(run["peak_rss_bytes"]) for run in runs])
    return table


def _round_total(run: dict[str, Any], round_idx: int) -> float | None:
    for row in run["rows"]:
        if int(row["round"]) == round_idx and "round_s" in row:
            store = run["phases"].get(str(round_idx), {}).get("store write", {}).get("seconds", 0.0)
            return float(row["round_s"]) + store  # the loop's round_s stops before the store write
    return None
