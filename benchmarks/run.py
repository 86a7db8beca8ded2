"""``make bench`` = ``python -m benchmarks.run``: acquisition, round-cost and generation benchmarks.

Prints rich tables and writes every measurement (with machine, versions, thread cap and the exact
arguments) to ``<out>/bench-<UTC time>.json`` and ``<out>/latest.json`` (default ``runs/bench``).

Default (``make bench``; ~10 min on a quiet 2-core machine):

* acquisition on pools of 1k, 10k and 50k rows, 2 and 4 classes, 768-d, labeled set = 10 % of the
  pool, select 100, k = 10; 3 interleaved runs (1 for anything slower than ``--slow-s`` = 30 s);
  above ``--large-pool`` (10k) small-text runs for 2 classes only and the like-for-like CAL is
  skipped (``--large-pool 100000`` runs the whole matrix, ~10 more minutes);
* one round of ``recipes/demo.yaml`` and ``recipes/demo_signal.yaml`` at 0.1 % and 1 % SST-2 pools,
  100 test sentences;
* Gemma 3 270M and SmolLM2-135M throughput at batch 8 and 32 against the GEMM bound;
* GRPO step time on Gemma 3 270M, rollouts from TRL's ``generate`` vs the generator's loop.

``--quick`` shrinks every section to seconds-long sizes (the smoke test's settings);
``--sections`` picks sections; the size options override either preset.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser", "resolve_settings"]

logger = logging.getLogger("benchmarks")

SECTIONS = ("acquisition", "rounds", "generation", "rl")

FULL: dict[str, Any] = {
    "sizes": [1000, 10000, 50000], "classes": [2, 4], "labeled": 0.1, "dim": 768, "n_query": 100, "k": 10,
    "repeats": 3, "slow_s": 30.0, "large_pool": 10000,
    "recipes": ["recipes/demo.yaml", "recipes/demo_signal.yaml"], "fractions": [0.001, 0.01], "max_test_samples": 100,
    "annotator_samples": 512, "round_overrides": [],
    "generators": ["bundled:gemma3-270m", "bundled:smollm2-135m"], "batch_sizes": [8, 32], "n_prompts": 32, "passes": 2,
    "max_new_tokens": None,
    "rl_generators": ["bundled:gemma3-270m"], "rl_steps": 2, "rl_prompts": 2, "rl_generations": 4,
}

QUICK: dict[str, Any] = {
    **FULL,
    "sizes": [300, 1000], "classes": [2, 4], "dim": 64, "n_query": 20, "repeats": 2,
    "recipes": ["recipes/demo.yaml"], "fractions": [0.001], "max_test_samples": 32,
    "round_overrides": ["--classifier.min_steps=2", "--classifier.max_steps=2"],
    "generators": ["bundled:smollm2-135m"], "batch_sizes": [2, 4], "n_prompts": 4, "passes": 1, "max_new_tokens": 8,
    "rl_generators": ["bundled:smollm2-135m"], "rl_steps": 1, "rl_prompts": 1, "rl_generations": 2,
}


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def _strs(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes in every section (smoke test)")
    p.add_argument("--sections", type=_strs, default=list(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    p.add_argument("--out", default="runs/bench", help="folder of the JSON results and round scratch runs")
    p.add_argument("--threads", type=int, default=None,
                   help="torch and BLAS/OpenMP threads for everything (default SIGNAL_HF_NUM_THREADS, else all cores)")
    a = p.add_argument_group("acquisition")
    a.add_argument("--sizes", type=_ints, help="pool sizes, e.g. 1000,10000,50000")
    a.add_argument("--classes", type=_ints, help="class counts, e.g. 2,4")
    a.add_argument("--labeled", type=float, help="labeled set: fraction of the pool (<1) or rows (>=1)")
    a.add_argument("--dim", type=int, help="embedding size")
    a.add_argument("--n-query", type=int, help="items selected per query")
    a.add_argument("--k", type=int, help="CAL/SIGnAL neighbours")
    a.add_argument("--repeats", type=int, help="interleaved runs per implementation")
    a.add_argument("--slow-s", type=float, help="run only once what takes longer than this")
    a.add_argument("--large-pool", type=int,
                   help="above this pool size: no like-for-like CAL, small-text for the first class count only")
    a.add_argument("--methods", type=_strs, default=None, help="implementations (default all; see benchmarks.acquisition)")
    r = p.add_argument_group("rounds")
    r.add_argument("--recipes", type=_strs, help="recipe files")
    r.add_argument("--fractions", type=_floats, help="pool fractions, e.g. 0.001,0.01")
    r.add_argument("--max-test-samples", type=int, help="test sentences evaluated per round")
    r.add_argument("--annotator-samples", type=int, help="train rows of the annotator trained when none exists")
    g = p.add_argument_group("generation")
    g.add_argument("--generators", type=_strs, help="generator models")
    g.add_argument("--batch-sizes", type=_ints, help="batch sizes compared")
    g.add_argument("--n-prompts", type=int, help="prompts per pass")
    g.add_argument("--passes", type=int, help="alternating passes")
    g.add_argument("--max-new-tokens", type=int, help="completion cap (default: the recipe's)")
    q = p.add_argument_group("rl (GRPO rollouts; --passes and --max-new-tokens as above)")
    q.add_argument("--rl-generators", type=_strs, help="generator models")
    q.add_argument("--rl-steps", type=int, help="GRPO steps per run")
    q.add_argument("--rl-prompts", type=int, help="prompts per step")
    q.add_argument("--rl-generations", type=int, help="completions per prompt")
    return p


def resolve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The preset (``--quick`` or full) with the explicitly given options on top."""
    settings = dict(QUICK if args.quick else FULL)
    for key in FULL:
        val = getattr(args, key, None)
        if val is not None:
            settings[key] = val
    bad = [s for s in args.sections if s not in SECTIONS]
    if bad:
        raise SystemExit(f"--sections: unknown {bad} (valid: {', '.join(SECTIONS)})")
    settings["sections"] = list(args.sections)
    settings["methods"] = args.methods
    return settings


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    settings = resolve_settings(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from rich.console import Console

    from .common import fix_malloc_threshold, machine_info, set_threads, write_json

    malloc_fixed = fix_malloc_threshold()
    threads = set_threads(args.threads)
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()

    console = Console(width=max(140, Console().width))
    out_dir = Path(args.out)
    report: dict[str, Any] = {"command": " ".join([Path(sys.executable).name, "-m", "benchmarks.run", *(argv if argv is not None else sys.argv[1:])]),
                              "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "machine": {**machine_info(threads), "malloc_mmap_threshold_fixed": malloc_fixed},
                              "settings": settings, "sections": {}, "section_seconds": {}}
    t0 = time.perf_counter()
    s = settings
    if "acquisition" in s["sections"]:
        from .acquisition import acquisition_table, run_acquisition, small_text_available

        if not small_text_available():
            console.print("[yellow]small-text is not installed: only our implementations run "
                          "(pip install 'signal_hf[bench]' for the comparison)[/yellow]")
        t = time.perf_counter()
        rep = run_acquisition(s["sizes"], s["classes"], labeled=s["labeled"], dim=s["dim"], n_query=s["n_query"], k=s["k"],
                              repeats=s["repeats"], slow_s=s["slow_s"], methods=s["methods"],
                              large_pool=s["large_pool"])
        report["sections"]["acquisition"] = rep
        report["section_seconds"]["acquisition"] = time.perf_counter() - t
        console.print(acquisition_table(rep))
    if "rounds" in s["sections"]:
        from .rounds import rounds_table, run_rounds

        t = time.perf_counter()
        rep = run_rounds(s["recipes"], s["fractions"], out_dir=out_dir / "rounds", max_test_samples=s["max_test_samples"],
                         annotator_samples=s["annotator_samples"], extra_overrides=s["round_overrides"])
        report["sections"]["rounds"] = rep
        report["section_seconds"]["rounds"] = time.perf_counter() - t
        console.print(rounds_table(rep))
    if "generation" in s["sections"]:
        from .generation import bound_table, generation_table, run_generation

        t = time.perf_counter()
        rep = run_generation(s["generators"], batch_sizes=s["batch_sizes"], n_prompts=s["n_prompts"], passes=s["passes"],
                             max_new_tokens=s["max_new_tokens"], bound_repeats=1 if args.quick else 3)
        report["sections"]["generation"] = rep
        report["section_seconds"]["generation"] = time.perf_counter() - t
        console.print(bound_table(rep))
        console.print(generation_table(rep))
    if "rl" in s["sections"]:
        from .rl_rollouts import rl_rollouts_table, run_rl_rollouts

        t = time.perf_counter()
        rep = run_rl_rollouts(s["rl_generators"], steps=s["rl_steps"], prompts_per_step=s["rl_prompts"],
                              num_generations=s["rl_generations"], passes=s["passes"], max_new_tokens=s["max_new_tokens"])
        report["sections"]["rl"] = rep
        report["section_seconds"]["rl"] = time.perf_counter() - t
        console.print(rl_rollouts_table(rep))
    report["total_seconds"] = time.perf_counter() - t0
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = write_json(out_dir / f"bench-{stamp}.json", report)
    write_json(out_dir / "latest.json", report)
    console.print(f"total {report['total_seconds']:.0f} s on {threads} thread(s); results: {path}")
    return report


if __name__ == "__main__":
    main()
