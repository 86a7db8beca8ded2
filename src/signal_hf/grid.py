"""Run several recipes side by side on one machine, one seed per worker process.

``signal-hf grid RECIPE [RECIPE ...] --workers 2`` splits every recipe into one job per seed (seeds are
independent trials), runs the jobs in ``workers`` parallel processes with ``threads`` torch threads each,
and merges each recipe's seeds into one report in its ``output.output_dir``. On a small CPU machine
one single-threaded process per core beats one multi-threaded run after the other.

Each job is an ordinary ``signal-hf run`` into ``<output_dir>/seeds/seed-<s>`` (log next to it), so a
grid that was interrupted continues where it stopped when run again: every job resumes its own run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .config import ExperimentConfig, load_recipe
from .errors import SignalHFError

__all__ = ["GridJob", "plan_grid", "run_grid"]


@dataclass
class GridJob:
    """One seed of one recipe: a ``signal-hf run`` into ``output_dir``."""

    recipe: str
    seed: int
    output_dir: Path
    overrides: list[str]
    wall_s: float = 0.0
    returncode: int | None = None

    @property
    def log_path(self) -> Path:
        return self.output_dir.with_suffix(".log")

    def command(self) -> list[str]:
        seed_and_dir = [f"--loop.seeds=[{self.seed}]", f"--output.output_dir={self.output_dir}"]
        return [sys.executable, "-m", "signal_hf", "run", self.recipe, *self.overrides, *seed_and_dir]


def plan_grid(recipes: list[str], overrides: list[str] = ()) -> list[tuple[ExperimentConfig, list[GridJob]]]:
    """Validate every recipe (before anything runs) and split each into one job per seed."""
    if not recipes:
        raise SignalHFError("grid: no recipe given (fix: signal-hf grid recipes/paper/cpu_sst2_0.1.yaml ...)")
    plan, outputs = [], {}
    for recipe in recipes:
        cfg = load_recipe(recipe, list(overrides))
        out = Path(cfg.output.output_dir)
        if out in outputs:
            raise SignalHFError(f"grid: {recipe} and {outputs[out]} share output.output_dir {out} (fix: give each recipe its own output_dir)")
        outputs[out] = recipe
        jobs = [GridJob(recipe, int(s), out / "seeds" / f"seed-{s}", list(overrides)) for s in cfg.loop.seeds]
        plan.append((cfg, jobs))
    return plan


def run_grid(recipes: list[str], workers: int = 2, threads: int = 1, overrides: list[str] = ()) -> list[GridJob]:
    """Run every (recipe, seed) job, ``workers`` at a time; merge each recipe's seeds into one report.

    Jobs start in recipe order, seed by seed. A failed job does not stop the others; the error names
    its log once all have finished. Returns the jobs with their wall time and return code.
    """
    from tqdm.auto import tqdm

    from .loop import log_event
    from .results import write_report

    if workers < 1 or threads < 1:
        raise SignalHFError("grid: --workers and --threads must be at least 1")
    plan = plan_grid(recipes, overrides)
    jobs = [j for _, js in plan for j in js]
    env = {**os.environ, "SIGNAL_HF_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}

    def run(job: GridJob) -> GridJob:
        job.output_dir.parent.mkdir(parents=True, exist_ok=True)
        cfg = recipe_of[id(job)][0]
        job_env = env
        if cfg.output.report_to == "trackio" and not env.get("TRACKIO_DIR"):
            # Every seed of a recipe in one trackio project: <output_dir>/trackio, not one per seed folder.
            job_env = {**env, "TRACKIO_DIR": str(Path(cfg.output.output_dir).resolve() / "trackio")}
        start = time.perf_counter()
        with open(job.log_path, "a", encoding="utf-8") as log:
            job.returncode = subprocess.run(job.command(), stdout=log, stderr=subprocess.STDOUT, env=job_env).returncode
        job.wall_s = time.perf_counter() - start
        return job

    # Earlier invocations' timings, read once: grid.json is rewritten after every finished job, so a
    # grid stopped part-way still records the seeds it finished.
    history = {cfg.output.output_dir: _earlier_invocations(cfg) for cfg, _ in plan}
    recipe_of = {id(j): (cfg, js) for cfg, js in plan for j in js}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool, tqdm(total=len(jobs), desc="grid", unit="run") as bar:
        futures = [pool.submit(run, j) for j in jobs]
        for fut in as_completed(futures):
            job = fut.result()
            log_event("grid_job", recipe=job.recipe, seed=job.seed, returncode=job.returncode, wall_s=job.wall_s, log=job.log_path)
            cfg, siblings = recipe_of[id(job)]
            _write_timing(cfg, siblings, history[cfg.output.output_dir], workers=workers, threads=threads, grid_wall_s=time.perf_counter() - started)
            bar.update(1)
    failed = [j for j in jobs if j.returncode != 0]
    for cfg, js in plan:
        if any(j.returncode != 0 for j in js) or not cfg.output.plot:
            continue
        title = f"{cfg.name}: {cfg.data.dataset}, pool {cfg.data.pool_fraction:.2%}"
        write_report(cfg.output.output_dir, title=title, sources=[j.output_dir for j in js])
        log_event("grid_report", recipe=js[0].recipe, output_dir=cfg.output.output_dir, seeds=len(js))
    if failed:
        logs = ", ".join(str(j.log_path) for j in failed)
        raise SignalHFError(f"grid: {len(failed)} of {len(jobs)} runs failed (fix: read {logs}, then run the same grid again to resume)")
    return jobs


def _earlier_invocations(cfg: ExperimentConfig) -> list[dict]:
    """The ``history`` for a new invocation: the existing ``grid.json``'s own history plus its record."""
    try:
        prev = json.loads((Path(cfg.output.output_dir) / "grid.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    if not isinstance(prev, dict):
        return []
    return [
        *prev.get("history", []),
        {
            **{k: prev[k] for k in ("workers", "threads", "grid_wall_s") if k in prev},
            "jobs_wall_s": {str(j["seed"]): j["wall_s"] for j in prev.get("jobs", []) if j.get("returncode") is not None},
        },
    ]


def _write_timing(cfg: ExperimentConfig, jobs: list[GridJob], history: list[dict], **info) -> None:
    """``grid.json`` in the recipe's output_dir: each seed's command, wall time and return code
    (``null`` while a seed has not finished).

    ``grid_wall_s`` runs from the grid's start to this recipe's latest finished seed. A resumed grid
    keeps the earlier invocations' wall times under ``history`` (oldest first), so
    ``total_grid_wall_s`` is the whole cost of the grid, not only of its last invocation.
    """
    from .environment import lock_digest
    from .results import software_versions, write_text_atomic

    out = Path(cfg.output.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        **info,
        "total_grid_wall_s": round(info.get("grid_wall_s", 0.0) + sum(h.get("grid_wall_s", 0.0) for h in history), 1),
        "history": history,
        "software": software_versions(),
        "lock": lock_digest(),
        "jobs": [
            {"seed": j.seed, "command": " ".join(j.command()[1:]), "wall_s": round(j.wall_s, 1), "returncode": j.returncode, "log": str(j.log_path)}
            for j in jobs
        ],
    }
    write_text_atomic(out / "grid.json", json.dumps(record, indent=1))
