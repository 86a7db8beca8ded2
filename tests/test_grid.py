"""``signal-hf grid``: recipes split into one process per seed, merged reports, same results as one run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version

import pytest
import yaml

from signal_hf.errors import SignalHFError
from signal_hf.grid import plan_grid
from signal_hf.results import read_results


def _recipe(path, out, strategies):
    path.write_text(
        yaml.safe_dump(
            {
                "name": path.stem,
                "data": {"dataset": "sst2", "pool_fraction": 0.0005, "max_test_samples": 48},
                "classifier": {"max_steps": 3, "max_length": 32, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 64},
                "acquisition": {"strategies": strategies, "k": 3},
                "loop": {"seeds": [0, 1], "initial_fraction": 0.2, "step_fraction": 0.2, "max_fraction": 0.6},
                "output": {"output_dir": str(out)},
            }
        )
    )
    return str(path)


def _cli(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "signal_hf", *args], capture_output=True, text=True, timeout=900, env={**os.environ, **env}
    )


@pytest.mark.slow  # ~2 min: a whole grid, killed and resumed, against a plain run (make test-slow)
def test_grid_matches_one_run_and_resumes(tmp_path):
    a = _recipe(tmp_path / "a.yaml", tmp_path / "a", ["random", "entropy"])
    b = _recipe(tmp_path / "b.yaml", tmp_path / "b", ["cal"])
    p = _cli("grid", a, b, "--workers", "2")
    assert p.returncode == 0, p.stderr[-3000:]
    # The reference: recipe a as one ordinary run, both seeds in one process.
    ref = _cli("run", a, f"--output.output_dir={tmp_path / 'ref'}", SIGNAL_HF_NUM_THREADS="1")
    assert ref.returncode == 0, ref.stderr[-3000:]
    ref_rows = {(r["method"], r["seed"], r["round"]): r for r in read_results(tmp_path / "ref")}
    grid_rows = {}
    for seed in (0, 1):
        rows = read_results(tmp_path / "a" / "seeds" / f"seed-{seed}")
        assert {r["seed"] for r in rows} == {seed}
        grid_rows.update({(r["method"], r["seed"], r["round"]): r for r in rows})
    assert grid_rows.keys() == ref_rows.keys() and len(ref_rows) == 2 * 2 * 3
    for k, r in ref_rows.items():
        assert grid_rows[k].get("selected_ids") == r.get("selected_ids"), k
        assert grid_rows[k]["accuracy"] == pytest.approx(r["accuracy"], abs=1e-6), k
    # Merged report: both seeds in every cell, and a per-seed timing record.
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert {s["method"] for s in summary} == {"random", "entropy"} and all(s["n"] == 2 for s in summary)
    assert (tmp_path / "a" / "learning_curves.png").stat().st_size > 0
    assert "| cal |" in (tmp_path / "b" / "summary.md").read_text()
    timing = json.loads((tmp_path / "b" / "grid.json").read_text())
    assert [(j["seed"], j["returncode"]) for j in timing["jobs"]] == [(0, 0), (1, 0)] and timing["workers"] == 2
    assert timing["software"]["torch"] == version("torch")
    # Running the same grid again resumes every seed's finished run: no round is recomputed.
    lines = (tmp_path / "b" / "seeds" / "seed-0" / "results.jsonl").read_text()
    again = _cli("grid", a, b, "--workers", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "b" / "seeds" / "seed-0" / "results.jsonl").read_text() == lines
    # grid.json keeps the first invocation's wall times; the total counts both invocations.
    resumed = json.loads((tmp_path / "b" / "grid.json").read_text())
    assert [h["grid_wall_s"] for h in resumed["history"]] == [timing["grid_wall_s"]]
    assert resumed["history"][0]["jobs_wall_s"] == {str(j["seed"]): j["wall_s"] for j in timing["jobs"]}
    assert resumed["total_grid_wall_s"] == pytest.approx(timing["grid_wall_s"] + resumed["grid_wall_s"], abs=0.11)
    assert timing["history"] == [] and timing["total_grid_wall_s"] == pytest.approx(timing["grid_wall_s"], abs=0.06)


def test_grid_json_written_after_each_job(tmp_path, monkeypatch):
    """A grid stopped part-way keeps the timings of the seeds it finished."""
    import signal_hf.grid as grid

    a = _recipe(tmp_path / "a.yaml", tmp_path / "a", ["random"])
    # Stand-in seed runs: seed 0 succeeds, seed 1 fails; no model is loaded. Seed 1 exits only once
    # grid.json exists (written when seed 0 finished), so that first record sees it still running
    # whatever the scheduling; without the wait a loaded machine could finish seed 1 first.
    timing_file = tmp_path / "a" / "grid.json"
    stand_in = (
        "import pathlib, sys, time\n"
        "seed, end = int(sys.argv[1]), time.time() + 120\n"
        "while seed and not pathlib.Path(sys.argv[2]).exists() and time.time() < end:\n"
        "    time.sleep(0.02)\n"
        "sys.exit(seed)\n"
    )
    monkeypatch.setattr(grid.GridJob, "command", lambda self: [sys.executable, "-c", stand_in, str(self.seed), str(timing_file)])
    seen = []
    real = grid._write_timing

    def spy(cfg, jobs, history, **info):
        real(cfg, jobs, history, **info)
        seen.append(json.loads((tmp_path / "a" / "grid.json").read_text()))

    monkeypatch.setattr(grid, "_write_timing", spy)
    with pytest.raises(SignalHFError, match="1 of 2 runs failed"):
        grid.run_grid([a], workers=1)
    assert [[j["returncode"] for j in s["jobs"]] for s in seen] == [[0, None], [0, 1]]
    # Run again: the first invocation's finished seeds move into the history.
    seen.clear()
    with pytest.raises(SignalHFError):
        grid.run_grid([a], workers=1)
    assert set(seen[0]["history"][0]["jobs_wall_s"]) == {"0", "1"} and len(seen[-1]["history"]) == 1


def test_grid_refuses_bad_input_before_running(tmp_path):
    a = _recipe(tmp_path / "a.yaml", tmp_path / "out", ["random"])
    b = _recipe(tmp_path / "b.yaml", tmp_path / "out", ["cal"])
    with pytest.raises(SignalHFError, match="share output.output_dir"):
        plan_grid([a, b])
    assert [j.seed for _, jobs in plan_grid([a]) for j in jobs] == [0, 1]
    p = _cli("grid", a, "--classifier.max_steps", "3")
    assert p.returncode == 2 and "--section.key=value" in p.stderr and not (tmp_path / "out").exists()
