"""The README's custom-dataset example, run as written (a fresh folder, the real CLI)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _example_block() -> str:
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- custom-dataset-example -->\n```bash\n(.*?)```\n<!-- /custom-dataset-example -->", readme, re.S)
    assert m, "README.md lost its custom-dataset example block"
    return m.group(1)


@pytest.mark.slow
def test_readme_custom_dataset_example_runs_as_written_and_learns(tmp_path):
    for name in (".venv", "recipes"):  # the checkout, seen from a clean working directory
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "SIGNAL_HF_DATA_DIR": str((ROOT / ".." / "shared" / "data").resolve()), "SIGNAL_HF_NUM_THREADS": "2"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", _example_block()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "runs" / "local_csv" / "results.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == {"random", "entropy", "signal"}
    random_rows = [r for r in rows if r["method"] == "random"]
    first, last = min(r["round"] for r in random_rows), max(r["round"] for r in random_rows)
    mean = lambda rnd: sum(r["accuracy"] for r in random_rows if r["round"] == rnd) / len([r for r in random_rows if r["round"] == rnd])  # noqa: E731
    assert mean(last) >= mean(first) + 0.05, (mean(first), mean(last))  # a rising curve with default classifier settings
    assert (tmp_path / "runs" / "local_csv" / "summary.md").is_file()
