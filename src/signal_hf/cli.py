"""Command line: ``signal-hf RECIPE [overrides]`` and the ``run``, ``resume``, ``plot``, ``inspect``, ``pull``,
``train-annotator`` and ``config`` sub-commands.

Errors a user can cause print as one ``error: field: problem (fix: ...)`` line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from .errors import SignalHFError

COMMANDS = ("run", "resume", "grid", "plot", "inspect", "pull", "train-annotator", "config")

USAGE = """signal-hf RECIPE.yaml [--section.key value ...]     run an experiment (same as `run`)
signal-hf run RECIPE.yaml [overrides] [--force]       run (resumes a matching run in output_dir; --force:
                                                      the folder may hold files that are not a run)
signal-hf resume RUN_DIR|REPO_ID [overrides]          continue a run from its last complete round
signal-hf resume RUN_DIR --from-round N               ... or from round N (later rounds are set aside)
signal-hf grid RECIPE [RECIPE ...] [--workers N]     run recipes' seeds side by side, merge each report
signal-hf plot RUN_DIR [RUN_DIR ... --out DIR]        redraw (or merge) tables and learning curves
signal-hf inspect RUN_DIR [--round N] [--out F.md]    what the generator wrote, acquired and was rewarded for
signal-hf pull REPO_ID --revision round-3             download a round's dataset or adapter from the Hub
signal-hf train-annotator RECIPE.yaml [--output DIR]  fine-tune the model oracle on the full train split
signal-hf config RECIPE.yaml [overrides]              print the validated recipe
signal-hf config --reference                          print the recipe reference (every field)"""


def _setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # Library chatter (new-head notices, deprecation notes) drowns the round log lines.
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")


def set_num_threads() -> int:
    """torch intra-op threads: ``SIGNAL_HF_NUM_THREADS`` or every core this process may use.

    On a small shared machine one thread per process avoids oversubscription stalls.
    """
    import torch

    n = int(os.environ.get("SIGNAL_HF_NUM_THREADS") or len(os.sched_getaffinity(0)))
    torch.set_num_threads(max(1, n))
    return n


def _print_summary(exp) -> None:
    table = getattr(exp, "table", None)
    if table:
        print(table)
        print(f"\nresults: {exp.output_dir / 'results.jsonl'}\nplot:    {exp.plot_path}")


def _pop_flag(args: list[str], flag: str, takes_value: bool = False) -> tuple[list[str], str | bool | None]:
    """``args`` without ``flag`` (``--flag`` / ``--flag V`` / ``--flag=V``) and its value."""
    out, value, i = [], None, 0
    while i < len(args):
        a = args[i]
        if a == flag and not takes_value:
            value = True
        elif a == flag:
            if i + 1 >= len(args):
                raise SignalHFError(f"{flag}: missing its value (fix: e.g. {flag} 3)")
            value, i = args[i + 1], i + 1
        elif takes_value and a.startswith(flag + "="):
            value = a.split("=", 1)[1]
        else:
            out.append(a)
        i += 1
    return out, value


def _finish(exp, cfg) -> int:
    """Print the summary, then (last) any rounds a HubStore could not push; exit 3 for those unless
    ``store.allow_pending``."""
    if not exp.is_main:
        return 0
    _print_summary(exp)
    if exp.pending_pushes:
        shown = ", ".join(exp.pending_pushes[:3]) + (" …" if len(exp.pending_pushes) > 3 else "")
        print(
            f"warning: {len(exp.pending_pushes)} round(s) are not on the Hub yet ({shown}); they are kept in the local store "
            f"and pushed by `signal-hf resume {exp.output_dir}`",
            file=sys.stderr,
        )
        return 0 if cfg.store.allow_pending else 3
    return 0


def cmd_run(recipe: str, overrides: list[str]) -> int:
    from .config import load_recipe
    from .loop import run_experiment

    overrides, force = _pop_flag(overrides, "--force")
    cfg = load_recipe(recipe, overrides)
    _setup_logging(cfg.output.log_level)
    set_num_threads()
    exp = run_experiment(cfg, force=bool(force))
    return _finish(exp, cfg)


def cmd_resume(target: str, overrides: list[str]) -> int:
    from .config import apply_overrides, config_from_dict, load_recipe
    from .loop import run_experiment

    overrides, force = _pop_flag(overrides, "--force")
    overrides, from_round = _pop_flag(overrides, "--from-round", takes_value=True)
    if from_round is not None and not str(from_round).isdigit():
        raise SignalHFError(f"--from-round: expected a round number, got {from_round!r} (fix: e.g. --from-round 3)")
    path = Path(target)
    if path.is_dir():
        recipe = path / "recipe.yaml"
        if not recipe.is_file():
            raise SignalHFError(f"resume: {path} has no recipe.yaml (fix: pass the output_dir of a signal-hf run)")
        cfg = load_recipe(recipe, [f"--output.output_dir={path}", *overrides])
    else:
        # A Hub dataset repo of a HubStore: the recipe travels in every round's state.
        from .config import StoreConfig
        from .store import make_store

        store = make_store(StoreConfig(backend="hub", dataset_repo_id=target), Path("runs") / target.replace("/", "__"))
        runs = store.runs()
        if not runs:
            raise SignalHFError(f"resume: no complete round found in {target!r} (fix: check the repo id, or pass a run folder)")
        raw = dict(store.load_round(runs[0]).state["recipe"])
        raw.setdefault("output", {})["output_dir"] = str(Path("runs") / target.replace("/", "__"))
        cfg = config_from_dict(apply_overrides(raw, overrides))
    _setup_logging(cfg.output.log_level)
    set_num_threads()
    exp = run_experiment(cfg, force=bool(force), from_round=int(from_round) if from_round is not None else None)
    return _finish(exp, cfg)


def cmd_grid(argv: list[str]) -> int:
    from .grid import run_grid

    p = argparse.ArgumentParser(prog="signal-hf grid", description="Run recipes one seed per process, side by side, and merge each recipe's report.")
    p.add_argument("recipes", nargs="+", help="recipe files; overrides apply to all and must be written --section.key=value")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="parallel runs (default: one per core)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    a, overrides = p.parse_known_args(argv)
    bad = [o for o in overrides if not (o.startswith("--") and "=" in o)]
    if bad:
        raise SignalHFError(f"grid: override {bad[0]!r} is not --section.key=value (fix: write overrides with '=', e.g. --classifier.max_steps=20)")
    _setup_logging()
    jobs = run_grid(a.recipes, workers=a.workers, threads=a.threads, overrides=overrides)
    for j in jobs:
        print(f"{j.recipe} seed {j.seed}: {j.wall_s:.0f} s -> {j.output_dir}")
    return 0


def cmd_plot(argv: list[str]) -> int:
    from .results import is_one_of, write_report

    p = argparse.ArgumentParser(prog="signal-hf plot", description="Redraw the table and learning curves from saved results.")
    p.add_argument("run_dirs", nargs="+", help="one run folder, or several to merge (e.g. runs/demo runs/demo_signal)")
    p.add_argument("--out", default=None, help="folder for the merged report (required with several runs); it also gets the merged results.jsonl")
    p.add_argument("--title", default=None, help="title of the table and plot (default: the output folder's name)")
    a = p.parse_args(argv)
    if len(a.run_dirs) > 1 and not a.out:
        raise SignalHFError("plot: several runs need --out DIR for the merged report (fix: add --out runs/merged)")
    out = a.out or a.run_dirs[0]
    try:
        # A separate report folder keeps the rows it was drawn from, so it can be committed and redrawn.
        keep_rows = a.out is not None and not is_one_of(a.out, a.run_dirs)
        table, png = write_report(out, title=a.title or Path(out).name, sources=a.run_dirs, keep_rows=keep_rows)
    except (FileNotFoundError, ValueError) as e:
        raise SignalHFError(f"plot: {e}") from None
    print(table)
    print(f"\nplot: {png}")
    return 0


def cmd_inspect(argv: list[str]) -> int:
    from .inspection import inspect_run

    p = argparse.ArgumentParser(prog="signal-hf inspect", description="What the generator wrote, round by round: kept/dropped, acquired synthetic items, the probe of the RL effect.")
    p.add_argument("run_dir", help="a run's output_dir (or a grid's)")
    p.add_argument("--round", type=int, default=None, help="one round only (default: every generative round)")
    p.add_argument("--out", default=None, help="also write the markdown here (default: RUN_DIR/inspect.md)")
    a = p.parse_args(argv)
    text = inspect_run(a.run_dir, a.round)
    out = Path(a.out) if a.out else Path(a.run_dir) / "inspect.md"
    out.write_text(text, encoding="utf-8")
    print(text, end="")
    print(f"\nwritten: {out}")
    return 0


def cmd_pull(argv: list[str]) -> int:
    from .store import pull

    p = argparse.ArgumentParser(prog="signal-hf pull", description="Download one round (a revision) from the Hub.")
    p.add_argument("repo_id")
    p.add_argument("--revision", required=True, help="round revision, e.g. round-3 or signal-gen-seed0-round-3")
    p.add_argument("--repo-type", default="dataset", choices=["dataset", "model"], help="dataset = pools + labels, model = adapter")
    p.add_argument("--local-dir", default=None)
    a = p.parse_args(argv)
    path = pull(a.repo_id, a.revision, repo_type=a.repo_type, local_dir=a.local_dir)
    print(path)
    return 0


def cmd_train_annotator(argv: list[str]) -> int:
    from .annotator import train_annotator
    from .config import load_recipe

    p = argparse.ArgumentParser(
        prog="signal-hf train-annotator", description="Fine-tune the model oracle on the train split and report its test accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("recipe", help="the recipe whose data, classifier and oracle sections are used")
    p.add_argument("--output", default=None, help="folder for the annotator (None: the recipe's oracle.annotator_path)")
    p.add_argument("--max-train-samples", type=int, default=None, help="train on a seeded subset (None: the whole train split)")
    p.add_argument("--epochs", type=float, default=1.0, help="epochs over the train rows, within [classifier.min_steps, --max-steps] steps")
    p.add_argument("--max-steps", type=int, default=None, help="step ceiling (None: the recipe's classifier.max_steps; -1: no ceiling)")
    a, rest = p.parse_known_args(argv)
    cfg = load_recipe(a.recipe, rest)
    _setup_logging(cfg.output.log_level)
    import datasets

    datasets.disable_progress_bars()  # one result line, not the map/filter bars
    out, acc = train_annotator(cfg, output=a.output, max_train_samples=a.max_train_samples, epochs=a.epochs, max_steps=a.max_steps)
    from .annotator import PAPER_ANNOTATOR_ACCURACY

    paper = PAPER_ANNOTATOR_ACCURACY.get(cfg.data.dataset)
    info = json.loads((out / "annotator.json").read_text())
    versus = f" (the paper's annotator: {100 * paper:.2f} %)" if paper is not None else ""
    print(f"annotator saved to {out}: trained on {info['train_rows']} rows for {info['steps']} steps; test accuracy {100 * acc:.2f} % on {info['test_rows']} rows{versus}")
    return 0


def cmd_config(recipe: str, overrides: list[str]) -> int:
    from .config import load_recipe, to_yaml

    print(to_yaml(load_recipe(recipe, overrides)), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    try:
        cmd = argv[0]
        if cmd == "run":
            if len(argv) < 2:
                raise SignalHFError("run: missing RECIPE (fix: signal-hf run recipes/demo.yaml)")
            return cmd_run(argv[1], argv[2:])
        if cmd == "resume":
            if len(argv) < 2:
                raise SignalHFError("resume: missing RUN_DIR or REPO_ID (fix: signal-hf resume runs/demo)")
            return cmd_resume(argv[1], argv[2:])
        if cmd == "grid":
            return cmd_grid(argv[1:])
        if cmd == "plot":
            return cmd_plot(argv[1:])
        if cmd == "inspect":
            return cmd_inspect(argv[1:])
        if cmd == "pull":
            return cmd_pull(argv[1:])
        if cmd == "train-annotator":
            return cmd_train_annotator(argv[1:])
        if cmd == "config":
            if argv[1:] == ["--reference"]:
                from .config import config_reference_markdown

                print(config_reference_markdown(), end="")
                return 0
            if len(argv) < 2:
                raise SignalHFError("config: missing RECIPE")
            return cmd_config(argv[1], argv[2:])
        if cmd.startswith("-"):
            raise SignalHFError(f"unknown option {cmd!r} (fix: signal-hf RECIPE.yaml [overrides]; see signal-hf --help)")
        return cmd_run(cmd, argv[1:])
    except SignalHFError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: completed rounds are saved; continue with `signal-hf resume <output_dir>`", file=sys.stderr)
        return 130
