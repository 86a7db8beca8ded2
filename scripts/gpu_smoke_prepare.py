"""Build the carry folder of the GPU smoke check (``make gpu-smoke-prepare``): wheels + tiny models.

The GPU machine has torch, transformers, accelerate and peft but not trl, datasets, evaluate or
bitsandbytes, and no package index; the bundled models are far too large to send. So this writes,
into ``build/gpu_smoke/`` (at most 64 MiB, the limit on what travels with the working tree):

* ``wheels/``: the pinned trl, datasets, evaluate and bitsandbytes wheels for CPython 3.12 / x86_64
  Linux (the GPU machine's Python), and the small pure-Python dependencies of datasets;
* ``models/tiny-qwen2``: a randomly initialised Qwen2-architecture causal LM (the paper's generator
  family) with the bundled SmolLM2 tokenizer (a ChatML byte-level BPE), saved in bfloat16;
* ``models/tiny-bert``: a randomly initialised BERT sequence classifier (the paper's classifier
  family) with the bundled MiniLM tokenizer;
* ``models/annotator``: that BERT briefly trained on SST-2 by ``signal-hf train-annotator``, the
  model oracle of the smoke recipe;
* ``manifest.json``: what is inside, sizes, and the versions the wheels were chosen for.

The tiny models exercise the code paths (4-bit loading, LoRA, bf16, PPO/GRPO, DeepSpeed), not quality.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 64 * 1024 * 1024
#: Wheels the GPU machine lacks (pinned like pyproject.toml / requirements.lock), and the pure-Python
#: dependencies of datasets/evaluate that a torch + transformers environment does not already have.
WHEELS = ["trl==1.16.0", "datasets==5.2.0", "evaluate==0.4.6", "bitsandbytes==0.50.2", "dill==0.4.0", "multiprocess==0.70.18", "xxhash==3.6.0"]
GPU_PYTHON = "3.12"


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def download_wheels(dest: Path, wheels: list[str]) -> list[str]:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", GPU_PYTHON,
        "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_24_x86_64", "--platform", "manylinux_2_17_x86_64",
        "--platform", "manylinux2014_x86_64",
        "--implementation", "cp", "-d", str(dest), *wheels,
    ]
    subprocess.run(cmd, check=True)
    return sorted(p.name for p in dest.glob("*.whl"))


def build_models(models: Path, seed: int = 0) -> dict[str, int]:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, Qwen2Config, Qwen2ForCausalLM

    from signal_hf.bundled import resolve_model_path

    torch.manual_seed(seed)
    # The generator: Qwen2 architecture, tiny, with a real causal-LM tokenizer (SmolLM2's).
    tok = AutoTokenizer.from_pretrained(resolve_model_path("bundled:smollm2-135m", "gpu-smoke"))
    cfg = Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    lm = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    lm.save_pretrained(models / "tiny-qwen2")
    tok.save_pretrained(models / "tiny-qwen2")
    # The classifier: BERT architecture, tiny, with the bundled MiniLM tokenizer.
    btok = AutoTokenizer.from_pretrained(resolve_model_path("bundled:minilm", "gpu-smoke"))
    bcfg = BertConfig(vocab_size=btok.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, max_position_embeddings=128)
    bert = BertForSequenceClassification(bcfg)
    bert.save_pretrained(models / "tiny-bert")
    btok.save_pretrained(models / "tiny-bert")
    return {name: _size(models / name) for name in ("tiny-qwen2", "tiny-bert")}


def build_annotator(models: Path) -> dict:
    """``signal-hf train-annotator`` on the tiny BERT (CPU, a few hundred SST-2 rows)."""
    from signal_hf.annotator import train_annotator
    from signal_hf.config import load_recipe

    cfg = load_recipe(ROOT / "recipes" / "gpu_smoke.yaml", [f"--classifier.model_name_or_path={models / 'tiny-bert'}", "--generator.device=cpu"])
    out, acc = train_annotator(cfg, output=str(models / "annotator"), max_train_samples=512, epochs=1, max_steps=40)
    return {"path": str(out.relative_to(models.parent)), "test_accuracy": acc}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "build" / "gpu_smoke"))
    p.add_argument("--skip-wheels", action="store_true", help="models only (the CPU test; no package index needed)")
    a = p.parse_args(argv)
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    (out / "models").mkdir(parents=True)
    wheels = [] if a.skip_wheels else download_wheels(out / "wheels", WHEELS)
    sizes = build_models(out / "models")
    annotator = build_annotator(out / "models")
    total = _size(out)
    manifest = {"wheels": wheels, "wheels_for_python": GPU_PYTHON, "model_bytes": sizes, "annotator": annotator, "total_bytes": total, "limit_bytes": LIMIT_BYTES}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(json.dumps(manifest, indent=1))
    if total > LIMIT_BYTES:
        print(f"error: the carry folder {out} is {total / 2**20:.1f} MiB, over the {LIMIT_BYTES / 2**20:.0f} MiB limit", file=sys.stderr)
        return 2
    print(f"carry folder {out}: {total / 2**20:.1f} MiB of {LIMIT_BYTES / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
