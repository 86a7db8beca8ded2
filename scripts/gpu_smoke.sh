#!/usr/bin/env bash
# The GPU smoke check, in one run on the GPU machine (about 5 minutes): install the carried wheels,
# run the paper's code path on tiny models -- 4-bit LoRA generator + PPO (2 rounds), GRPO (1 round),
# then PPO under `accelerate launch` with DeepSpeed ZeRO-2 when deepspeed is importable -- and write
# $OUT/gpu_smoke.json (what ran, timings, peak GPU memory, version skew).
#   make gpu-smoke-prepare            # here: build/gpu_smoke/ (wheels + tiny models, < 64 MiB)
#   OUT=/tmp/out bash scripts/gpu_smoke.sh           # there; `--cpu`: the CPU half (no 4-bit)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/gpu_smoke/out}
CARRY=${CARRY:-build/gpu_smoke}
VENV=${SMOKE_VENV:-/tmp/signal_hf_smoke_venv}
CPU_FLAG=""
[ "${1:-}" = "--cpu" ] && CPU_FLAG="--cpu"
mkdir -p "$OUT"
if [ ! -f "$CARRY/manifest.json" ]; then
  echo "error: $CARRY/manifest.json not found (fix: run make gpu-smoke-prepare, and carry $CARRY)" >&2
  exit 2
fi
PY=python3
# The CPU half runs in this project's own environment (make gpu-smoke-cpu puts .venv/bin first on PATH).
if [ -z "$CPU_FLAG" ] && ls "$CARRY"/wheels/*.whl >/dev/null 2>&1; then
  # The machine's own torch/transformers/accelerate/peft stay; the carried wheels add what it lacks.
  python3 -m venv --system-site-packages "$VENV" && PY="$VENV/bin/python"
  "$PY" -m pip install --quiet --no-index --no-deps "$CARRY"/wheels/*.whl 2>&1 | tail -3 \
    || echo "warning: some carried wheels did not install (the phases record what is missing)"
fi
missing=$("$PY" -c "import importlib.util as u; print(' '.join(m for m in ('torch','transformers','accelerate','peft','trl','datasets','evaluate','yaml','pyarrow') if u.find_spec(m) is None))")
if [ -n "$missing" ]; then
  echo "error: the environment lacks: $missing (fix: carry their wheels in $CARRY/wheels)" >&2
  echo "{\"error\": \"missing packages: $missing\"}" > "$OUT/gpu_smoke_env.json"
  exit 2
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" scripts/gpu_smoke.py --phase ppo-4bit --out "$OUT" --carry "$CARRY" $CPU_FLAG
"$PY" scripts/gpu_smoke.py --phase grpo-4bit --out "$OUT" --carry "$CARRY" $CPU_FLAG
if [ -z "$CPU_FLAG" ]; then
  if "$PY" -c "import deepspeed" >/dev/null 2>&1; then
    "$PY" -m accelerate.commands.launch --config_file recipes/accelerate_configs/deepspeed_zero2.yaml --num_processes 1 \
      scripts/gpu_smoke.py --phase deepspeed-zero2 --out "$OUT" --carry "$CARRY"
  else
    echo "deepspeed is not importable here: the ZeRO-2 phase did not run"
    "$PY" - "$OUT" <<'PY'
import json, sys, pathlib
p = pathlib.Path(sys.argv[1]) / "gpu_smoke.json"
records = json.loads(p.read_text()) if p.is_file() else []
records.append({"phase": "deepspeed-zero2", "ok": False, "error": "deepspeed is not installed on this machine and has no wheel to carry (it builds from source)"})
p.write_text(json.dumps(records, indent=1))
PY
  fi
fi
"$PY" -c "import json,sys; r=json.load(open('$OUT/gpu_smoke.json')); print('\n'.join(f\"{x['phase']}: {'ok' if x['ok'] else 'FAILED: ' + x.get('error','')}\" for x in r)); sys.exit(0 if all(x['ok'] or x['phase']=='deepspeed-zero2' for x in r) else 1)"
