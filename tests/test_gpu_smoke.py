"""The CPU half of the GPU smoke check (scripts/gpu_smoke.sh --cpu) on a freshly built carry folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def carry(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("carry")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_smoke_prepare.py"), "--skip-wheels", "--out", str(out)], cwd=ROOT, check=True, capture_output=True, text=True)
    return out


def test_carry_folder_holds_the_tiny_paper_architectures(carry):
    from transformers import AutoConfig

    manifest = json.loads((carry / "manifest.json").read_text())
    assert manifest["total_bytes"] < manifest["limit_bytes"] == 64 * 2**20
    assert AutoConfig.from_pretrained(carry / "models" / "tiny-qwen2").model_type == "qwen2"
    assert AutoConfig.from_pretrained(carry / "models" / "tiny-bert").model_type == "bert"
    assert json.loads((carry / "models" / "annotator" / "annotator.json").read_text())["dataset"] == "sst2"


def test_the_smoke_recipe_asks_for_the_paper_path():
    from signal_hf.config import load_recipe

    cfg = load_recipe(ROOT / "recipes" / "gpu_smoke.yaml")
    assert cfg.generator.load_in_4bit and cfg.rl.algorithm == "ppo" and cfg.classifier.backend == "finetune"


# Slow (~1 min on 2 cores): the whole smoke script's CPU half; PPO and GRPO steps stay in tests/test_rl.py.
@pytest.mark.slow
def test_cpu_half_runs_ppo_and_grpo_rounds(carry, tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "CARRY": str(carry), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_smoke.sh"), "--cpu"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    records = {r["phase"]: r for r in json.loads((tmp_path / "out" / "gpu_smoke.json").read_text())}
    assert set(records) == {"ppo-4bit", "grpo-4bit"}
    for phase, rounds in (("ppo-4bit", [0, 1, 2]), ("grpo-4bit", [0, 1])):
        r = records[phase]
        assert r["ok"] and r["cpu"] and r["version_skew"] == [], r.get("error")
        assert [row["round"] for row in r["rows"]] == rounds
        # Every round after the first generated candidates and ran an RL step on their reward.
        assert all(row["generated"] > 0 and row["rl_reward_mean"] is not None for row in r["rows"][1:])
