"""One phase of the GPU smoke check: run ``recipes/gpu_smoke.yaml`` and record what ran.

    python scripts/gpu_smoke.py --phase ppo-4bit --out OUT [--cpu]
    accelerate launch --config_file recipes/accelerate_configs/deepspeed_zero2.yaml --num_processes 1 \\
        scripts/gpu_smoke.py --phase deepspeed-zero2 --out OUT

Phases: ``ppo-4bit`` (2 rounds, 4-bit NF4 LoRA generator, PPO), ``grpo-4bit`` (1 round, GRPO),
``deepspeed-zero2`` (``ppo-4bit`` under an Accelerate DeepSpeed ZeRO-2 launch). ``--cpu`` runs the
same recipe on CPU without 4-bit (the half of the check CI runs). Each phase appends one record to
``OUT/gpu_smoke.json``: whether it ran, one-line error if not, wall time, peak GPU memory, how many
linear layers were 4-bit, the device, the library versions, and each round's row (accuracy,
generated/kept counts, RL reward and KL). A failure is recorded, not raised: the script always exits
0 after writing its record, so one broken phase does not hide the others.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PHASES = {
    "ppo-4bit": [],
    "grpo-4bit": ["--rl.algorithm=grpo", "--loop.signal_max_fraction=0.4"],
    "deepspeed-zero2": [],
}
CPU = ["--generator.load_in_4bit=false", "--generator.device=cpu"]
#: The versions this project is locked to (requirements.lock); the GPU machine's may differ.
PACKAGES = ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "evaluate", "bitsandbytes", "deepspeed")
ROW_FIELDS = ("round", "labeled", "accuracy", "generated", "kept", "acquired_synthetic", "rl_reward_mean", "rl_kl", "round_s", "rl_s", "generate_s")


def versions() -> dict[str, str]:
    from signal_hf.results import software_versions

    return software_versions(PACKAGES, missing="missing")


def skew() -> list[str]:
    """Installed versions that differ from requirements.lock (the check reports them, one line each)."""
    from signal_hf.environment import find_lock, locked_versions

    lock = find_lock()
    pins = locked_versions(lock) if lock else {}
    have = versions()
    return [f"{n} {have[n]} (locked {pins[n]})" for n in PACKAGES if n in pins and have[n] != pins[n]]


def count_4bit(model) -> int:
    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0
    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def run_phase(phase: str, out: Path, cpu: bool, carry: Path) -> dict:
    import torch

    from signal_hf.config import load_recipe
    from signal_hf.generation import generator as gen_module
    from signal_hf.loop import run_experiment
    from signal_hf.results import read_results

    record: dict = {"phase": phase, "cpu": cpu, "versions": versions(), "version_skew": skew(), "ok": False}
    run_dir = out / "runs" / phase
    models = carry.resolve() / "models"
    overrides = [
        *PHASES[phase], *(CPU if cpu else []), f"--output.output_dir={run_dir}", "--output.plot=false",
        f"--classifier.model_name_or_path={models / 'tiny-bert'}", f"--generator.model_name_or_path={models / 'tiny-qwen2'}",
        f"--oracle.annotator_path={models / 'annotator'}",
    ]
    record["overrides"] = overrides
    seen = {"quantized_linear_layers": 0, "generator_dtype": None}
    real_load = gen_module.load_base_model

    def load_and_count(*args, **kwargs):
        model, tok = real_load(*args, **kwargs)
        seen["quantized_linear_layers"] = max(seen["quantized_linear_layers"], count_4bit(model))
        seen["generator_dtype"] = str(next(model.parameters()).dtype)
        return model, tok

    gen_module.load_base_model = load_and_count
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        record["device"] = torch.cuda.get_device_name(0)
    else:
        record["device"] = "cpu"
    t0 = time.perf_counter()
    try:
        cfg = load_recipe(ROOT / "recipes" / "gpu_smoke.yaml", overrides)
        exp = run_experiment(cfg, show_progress=False, force=True)
        if exp.is_main:
            record["rows"] = [{k: r.get(k) for k in ROW_FIELDS if k in r} for r in read_results(run_dir)]
        record["ok"] = True
    except Exception as e:  # recorded in one line; the traceback's last frames go to stderr
        record["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        traceback.print_exc(limit=-3)
    finally:
        gen_module.load_base_model = real_load
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    record.update(seen)
    if torch.cuda.is_available():
        record["peak_gpu_memory_bytes"] = torch.cuda.max_memory_allocated()
    return record


def append_record(out: Path, record: dict) -> None:
    path = out / "gpu_smoke.json"
    records = json.loads(path.read_text()) if path.is_file() else []
    records.append(record)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(records, indent=1))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--phase", choices=list(PHASES), required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cpu", action="store_true", help="CPU, no 4-bit (the CI half)")
    p.add_argument("--carry", default=str(ROOT / "build" / "gpu_smoke"), help="the folder make gpu-smoke-prepare built")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    record = run_phase(a.phase, out, a.cpu, Path(a.carry))
    if int(os.environ.get("RANK", "0")) == 0:
        append_record(out, record)
        status = "ran" if record["ok"] else f"FAILED ({record['error']})"
        print(f"gpu smoke {a.phase}: {status} in {record['wall_s']} s; 4-bit linear layers {record['quantized_linear_layers']}; "
              f"peak GPU memory {record.get('peak_gpu_memory_bytes', 0) / 2**20:.0f} MiB; version skew: {', '.join(record['version_skew']) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
