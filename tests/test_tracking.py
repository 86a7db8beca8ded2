"""Experiment tracking (``output.report_to``): what the trackers hold, read back with their own
readers, equals results.jsonl for every method and seed, and a resumed run logs no round twice.

The trackio run is a child process: trackio fixes its storage folder when first imported, and TRL
(imported by other test modules) imports it, so only a fresh interpreter shows where a run puts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from signal_hf.cli import main
from signal_hf.results import read_results

ROOT = Path(__file__).resolve().parents[1]
METHODS, SEEDS = ("random", "entropy"), (0, 1)


def recipe(tmp_path: Path, **output) -> Path:
    """SST-2, a 13-row pool, Random and Entropy × 2 seeds, rounds at 30 % and 60 % of the pool."""
    raw = {
        "name": "trk",
        "data": {"dataset": "sst2", "pool_fraction": 0.0002, "max_test_samples": 16},
        "classifier": {"max_length": 32},
        "acquisition": {"strategies": list(METHODS)},
        "loop": {"seeds": list(SEEDS), "initial_fraction": 0.3, "step_fraction": 0.3, "max_fraction": 0.6},
        "output": {"output_dir": str(tmp_path / "run"), "plot": False, **output},
    }
    path = tmp_path / "trk.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def results_by_trial(out: Path) -> dict[str, list[dict]]:
    """results.jsonl rows per tracker run name (``{method}-seed{seed}``), in round order."""
    trials: dict[str, list[dict]] = {}
    for row in sorted(read_results(out), key=lambda r: r["round"]):
        trials.setdefault(f"{row['method']}-seed{row['seed']}", []).append(row)
    assert set(trials) == {f"{m}-seed{s}" for m in METHODS for s in SEEDS}
    return trials


def cli(args: list, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_tensorboard_series_equal_results_and_resumes_log_each_round_once(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = recipe(tmp_path, report_to="tensorboard")
    out = tmp_path / "run"
    assert cli(["run", r], capsys)[0] == 0  # rounds 0-1
    assert cli(["resume", out, "--loop.max_fraction=0.9"], capsys)[0] == 0  # round 2, in a new session
    assert cli(["resume", out, "--from-round", "1"], capsys)[0] == 0  # round 2 again (rewound)
    for run_name, rows in results_by_trial(out).items():
        assert [row["round"] for row in rows] == [0, 1, 2]
        events = EventAccumulator(str(out / "tensorboard" / run_name))
        events.Reload()
        accuracy, labeled = events.Scalars("accuracy"), events.Scalars("labeled")
        # One point per round, however many sessions logged them (the rewound round 2 is purged once).
        assert [e.step for e in accuracy] == [e.step for e in labeled] == [0, 1, 2], run_name
        assert [e.value for e in accuracy] == pytest.approx([row["accuracy"] for row in rows], abs=1e-6)
        assert [e.value for e in labeled] == [row["labeled"] for row in rows]
        assert "train_s" in events.Tags()["scalars"] and "method" not in events.Tags()["scalars"]


# The child runs the CLI, then reads trackio's store with trackio's own reader (now pointed at the
# folder the run chose), and prints it as the last line.
_RUN_AND_READ = """
import json, sys
from signal_hf.cli import main
rc = main(["run", sys.argv[1]])
import trackio
from trackio.sqlite_storage import SQLiteStorage
runs = SQLiteStorage.get_runs("trk")
print(json.dumps({"rc": rc, "dir": str(trackio.utils.TRACKIO_DIR), "runs": {r: SQLiteStorage.get_logs("trk", r) for r in runs},
                  "configs": {r: SQLiteStorage.get_run_config("trk", r) for r in runs}}))
"""


def test_trackio_series_equal_results_in_the_run_folder(tmp_path):
    r = recipe(tmp_path, report_to="trackio")
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKIO_")}
    env.update(PYTHONPATH=str(ROOT / "src"), SIGNAL_HF_NUM_THREADS="1", HF_HOME=str(tmp_path / "hf_home"))
    done = subprocess.run([sys.executable, "-c", _RUN_AND_READ, str(r)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    *before, last = done.stdout.splitlines()
    assert not any("Trackio" in line for line in before)  # trackio's banners stay off stdout (the summary's)
    logged = json.loads(last)
    assert logged["rc"] == 0
    assert Path(logged["dir"]) == (out / "trackio").resolve() and (out / "trackio" / "trk.db").is_file()
    assert not (tmp_path / "hf_home" / "trackio").exists()  # not trackio's default folder
    trials = results_by_trial(out)
    assert set(logged["runs"]) == set(trials)
    for run_name, rows in trials.items():
        points = sorted((e["step"], e) for e in logged["runs"][run_name])
        assert [step for step, _ in points] == [row["round"] for row in rows] == [0, 1]
        assert [e["accuracy"] for _, e in points] == pytest.approx([row["accuracy"] for row in rows])
        assert [e["labeled"] for _, e in points] == [row["labeled"] for row in rows]
        config = logged["configs"][run_name]
        assert config["name"] == "trk" and config["acquisition"]["strategies"] == list(METHODS)
        assert config["_Group"] == run_name.split("-seed")[0]


def test_wandb_missing_is_a_one_line_config_error_before_the_folder_is_touched(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb fails, installed or not
    rc, err = cli(["run", recipe(tmp_path), "--output.report_to", "wandb"], capsys)
    assert rc == 2
    line = error_line(err)
    assert "output.report_to" in line and "wandb is not installed" in line and "pip install wandb" in line
    assert not (tmp_path / "run").exists()


def test_unknown_report_to_is_refused_naming_the_field(tmp_path, capsys):
    rc, err = cli(["run", recipe(tmp_path), "--output.report_to", "foo"], capsys)
    assert rc == 2
    line = error_line(err)
    assert "output.report_to" in line and "'foo'" in line and "tensorboard" in line
    assert not (tmp_path / "run").exists()


def test_trainer_callback_logs_a_trainers_steps_after_its_offset(tmp_path):
    """A real (tiny) Trainer: its per-step logs land under the prefix, on their own TensorBoard run."""
    import torch
    from datasets import Dataset
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import Trainer, TrainingArguments

    from signal_hf.tracking import TensorBoardTracker

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def forward(self, x=None, y=None):
            return {"loss": ((self.w(x).squeeze(-1) - y) ** 2).mean()}

    data = Dataset.from_dict({"x": [[1.0, 0.0], [0.0, 1.0]] * 4, "y": [1.0, -1.0] * 4})
    tracker = TensorBoardTracker(tmp_path / "tb")
    args = TrainingArguments(output_dir=str(tmp_path / "t"), max_steps=3, per_device_train_batch_size=2, logging_steps=1,
                             report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=Linear(), args=args, train_dataset=data, callbacks=[tracker.callback("train/clf/", step_offset=10)])
    trainer.train()
    tracker.finish()
    events = EventAccumulator(str(tmp_path / "tb" / "train" / "clf"))
    events.Reload()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert [e.step for e in events.Scalars("train/clf/loss")] == [11, 12, 13]
    assert [e.value for e in events.Scalars("train/clf/loss")] == pytest.approx(losses, rel=1e-5)
    assert not list((tmp_path / "tb").glob("events.*"))  # no result row was logged: no round-axis event file


def test_grid_seeds_share_one_trackio_folder(tmp_path, monkeypatch):
    """Each grid seed is its own run folder; with trackio they all log into <output_dir>/trackio."""
    import signal_hf.grid as grid

    monkeypatch.delenv("TRACKIO_DIR", raising=False)
    stand_in = "import os, pathlib, sys; pathlib.Path(sys.argv[1]).write_text(os.environ.get('TRACKIO_DIR', ''))"
    monkeypatch.setattr(grid.GridJob, "command", lambda self: [sys.executable, "-c", stand_in, str(self.output_dir) + ".env"])
    grid.run_grid([str(recipe(tmp_path, report_to="trackio"))], workers=2)
    seen = {p.read_text() for p in (tmp_path / "run" / "seeds").glob("*.env")}
    assert seen == {str((tmp_path / "run" / "trackio").resolve())}
    assert len(list((tmp_path / "run" / "seeds").glob("*.env"))) == len(SEEDS)


def test_only_numeric_fields_are_logged_nested_ones_flattened():
    import numpy as np

    from signal_hf.tracking import flatten_scalars

    row = {"accuracy": 0.5, "labeled": np.int64(8), "probe": {"gain": np.float32(0.25), "ci": [0, 1], "by": {"x": 2}},
           "method": "random", "stopped": True, "rl_kl": None, "rl_std": float("nan"), "selected_ids": [1, 2]}
    flat = flatten_scalars(row)
    assert flat == {"accuracy": 0.5, "labeled": 8, "probe/gain": 0.25, "probe/by/x": 2}
    assert all(type(v) in (int, float) for v in flat.values())  # numpy scalars become Python numbers
