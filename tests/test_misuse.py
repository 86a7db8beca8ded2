"""Bad input and misuse, probed as a user would: each gets a one-line error naming the field or file
and the fix (exit 2), never a traceback, and never lost or duplicated work.

Every case runs the real CLI entry point (``signal_hf.cli.main``) in this process, except the
concurrent-runs case, which needs a second process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from signal_hf.cli import main
from signal_hf.store import LocalStore

ROOT = Path(__file__).resolve().parents[1]


def recipe(tmp_path: Path, name: str = "r", **sections) -> Path:
    """A small SST-2 recipe (13-row pool, 2 rounds of Random) with ``sections`` merged in."""
    raw = {
        "name": name,
        "data": {"dataset": "sst2", "pool_fraction": 0.0002, "max_test_samples": 16},
        "classifier": {"max_length": 32},
        "acquisition": {"strategies": ["random"]},
        "loop": {"seeds": [0], "initial_fraction": 0.3, "step_fraction": 0.3, "max_fraction": 0.6},
        "output": {"output_dir": str(tmp_path / "run"), "plot": False},
    }
    for sec, values in sections.items():
        raw.setdefault(sec, {}).update(values)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def cli(args: list[str], capsys) -> tuple[int, str]:
    """Run the CLI; return its exit code and stderr, asserting a refusal is one line, no traceback."""
    rc = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if rc == 2:
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, err
    return rc, err


def error_line(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("error:"))


def csv_dataset(tmp_path: Path, train: str, test: str = "text,label\ngood film,pos\nbad film,neg\n", encoding: bytes | None = None) -> Path:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (folder / "train.csv").write_bytes(encoding if encoding is not None else train.encode())
    (folder / "test.csv").write_text(test)
    return folder


# ---------------------------------------------------------------------- the run folder
def test_two_runs_on_one_folder_at_once_one_is_refused_before_writing(tmp_path, capsys):
    # The first run fine-tunes (seconds per round), so it is surely running when the second starts.
    r = recipe(tmp_path, classifier={"backend": "finetune", "min_steps": 20, "max_steps": 20}, loop={"max_fraction": 0.9})
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SIGNAL_HF_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "signal_hf", "run", str(r)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lock, results = tmp_path / "run" / ".signal_hf.lock", tmp_path / "run" / "results.jsonl"
        deadline = time.time() + 300
        while time.time() < deadline and not results.is_file():  # holding the lock and past round 0
            time.sleep(0.1)
        assert str(first.pid) in lock.read_text(), "the first run never took the lock"
        before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
        rc, err = cli(["run", r], capsys)
        assert first.poll() is None, "the first run ended before the second was refused: the probe proved nothing"
        assert rc == 2 and "is in use by another run" in err and f"pid {first.pid}" in err
        # The refused run changed nothing the first one had written.
        assert {p: p.read_bytes() for p in before if p.name not in ("results.jsonl",) and p.suffix != ".lock"} == {
            p: b for p, b in before.items() if p.name not in ("results.jsonl",) and p.suffix != ".lock"
        }
        assert first.wait(timeout=600) == 0, first.stderr.read()[-3000:]
    finally:
        first.kill()
    # Rounds 0..2 (30, 60, 90 % of the pool), each once: nothing from the refused run.
    assert _rows(tmp_path / "run") == [("random", 0, i) for i in range(3)]
    assert cli(["run", r], capsys)[0] == 0  # the lock went with its holder: the folder is free again


def test_a_different_recipe_is_refused_before_recipe_yaml_is_touched(tmp_path, capsys):
    r = recipe(tmp_path)
    assert cli(["run", r], capsys)[0] == 0
    saved = (tmp_path / "run" / "recipe.yaml").read_text()
    other = recipe(tmp_path, name="other", acquisition={"k": 3})
    rc, err = cli(["run", other], capsys)
    assert rc == 2 and "output.output_dir" in error_line(err) and "different recipe" in err
    assert (tmp_path / "run" / "recipe.yaml").read_text() == saved
    assert cli(["resume", tmp_path / "run"], capsys)[0] == 0  # the original still resumes


@pytest.mark.parametrize("where", ["", "."])
def test_output_dir_may_not_be_the_working_directory(tmp_path, capsys, monkeypatch, where):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipe.yaml").write_text("mine\n")
    r = recipe(tmp_path, output={"output_dir": where})
    rc, err = cli(["run", r], capsys)
    assert rc == 2 and "output.output_dir" in error_line(err) and "working directory" in err
    assert (tmp_path / "recipe.yaml").read_text() == "mine\n"


def test_output_dir_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc, err = cli(["run", recipe(tmp_path, output={"output_dir": str(tmp_path / "afile")})], capsys)
    assert rc == 2 and "is a file, not a folder" in err


def test_a_folder_of_other_files_needs_force(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    r = recipe(tmp_path)
    rc, err = cli(["run", r], capsys)
    assert rc == 2 and "notes.txt" in err and "--force" in err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]
    assert cli(["run", r, "--force"], capsys)[0] == 0
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_a_foreign_results_file_is_never_appended_to(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.jsonl").write_text('{"epoch": 1, "loss": 0.3}\n')
    for extra in ([], ["--force"]):
        rc, err = cli(["run", recipe(tmp_path), *extra], capsys)
        assert rc == 2 and "not signal_hf results" in err
    assert (tmp_path / "run" / "results.jsonl").read_text() == '{"epoch": 1, "loss": 0.3}\n'


# ---------------------------------------------------------------------- the round store
@pytest.fixture()
def finished_run(tmp_path, capsys):
    r = recipe(tmp_path)
    assert cli(["run", r], capsys)[0] == 0
    return tmp_path / "run", LocalStore(tmp_path / "run" / "store")


def _rows(out: Path) -> list[tuple]:
    return [(x["method"], x["seed"], x["round"]) for x in map(json.loads, (out / "results.jsonl").read_text().splitlines())]


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete_meta", "delete_state"])
def test_a_damaged_round_is_named_and_an_earlier_round_resumes(finished_run, capsys, damage):
    out, store = finished_run
    rnd = store.round_dir("random-seed0", 1)  # the latest round: the one a resume continues from
    parquet = next((rnd / "data").glob("labeled-*.parquet"))
    if damage == "flip":
        data = bytearray(parquet.read_bytes())
        data[len(data) // 2] ^= 0x01
        parquet.write_bytes(bytes(data))
        named = "data/" + parquet.name
    elif damage == "truncate":
        parquet.write_bytes(parquet.read_bytes()[:100])
        named = "data/" + parquet.name
    elif damage == "delete_meta":
        (rnd / "signal_round.json").unlink()
        named = "signal_round.json"
    else:
        (rnd / "signal_state.json").unlink()
        named = "signal_state.json"
    rows_before = _rows(out)
    # Resuming with more rounds to go has to read round 1: the damage is named, nothing is redone.
    rc, err = cli(["resume", out, "--loop.max_fraction=1.0"], capsys)
    assert rc == 2 and named in error_line(err) and "--from-round 0" in err
    assert _rows(out) == rows_before
    rc, err = cli(["resume", out, "--from-round", "0"], capsys)
    assert rc == 0
    rows = _rows(out)  # rounds 0.. again, to the max_fraction of the last resume (saved in recipe.yaml)
    assert len(rows) == len(set(rows)) and set(rows_before) <= set(rows)
    assert store.load_round("random-seed0", 1).round == 1  # rewritten, verified


def test_a_flipped_byte_in_an_earlier_round_is_found_too(finished_run, capsys):
    out, store = finished_run
    state = store.round_dir("random-seed0", 0) / "signal_state.json"
    state.write_text(state.read_text().replace('"seed": 0', '"seed": 1'))
    rc, err = cli(["resume", out], capsys)
    assert rc == 2 and "round-0" in err and "signal_state.json does not match its SHA-256" in err


def test_a_resumed_round_never_duplicates_its_row(finished_run, capsys):
    out, _store = finished_run
    from signal_hf.results import ResultsLog

    log = ResultsLog(out)
    row = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    with open(out / "results.jsonl", "a") as f:
        f.write('{"method": "random", "se')  # a torn line of a killed write
    log.append({**row, "accuracy": 0.123})
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    keys = [(x["method"], x["seed"], x["round"]) for x in rows]
    assert len(keys) == len(set(keys)) and [x["accuracy"] for x in rows if x["round"] == row["round"]] == [0.123]


# ---------------------------------------------------------------------- the data
@pytest.mark.parametrize(
    "train, expect",
    [
        ("text,label\ngood,pos\n,neg\nfine,pos\nbad,neg\n", "data row 2 (data.text_column)"),
        ("text,label\ngood,pos\n   ,neg\nfine,pos\nbad,neg\n", "data row 2 (data.text_column)"),
        ("text,label\ngood,1\nbad,\nfine,1\nawful,0\n", "data row 2 (data.label_column)"),
    ],
    ids=["empty-text", "whitespace-text", "missing-label"],
)
def test_rows_without_text_or_label_are_refused_with_their_numbers(tmp_path, capsys, train, expect):
    data = csv_dataset(tmp_path, train, test="text,label\ngood film,1\nbad film,0\n" if "1" in train else "text,label\ngood film,pos\nbad film,neg\n")
    r = recipe(tmp_path, data={"dataset": str(data), "pool_fraction": 1.0, "max_test_samples": None}, loop={"initial_fraction": 0.75, "max_fraction": 1.0})
    rc, err = cli(["run", r], capsys)
    assert rc == 2 and expect in err and "data.drop_invalid_rows" in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_drop_invalid_rows_drops_them_with_a_count(tmp_path):
    from signal_hf.config import config_from_dict
    from signal_hf.data import load_task

    data = csv_dataset(tmp_path, "text,label\ngood,pos\n,neg\nfine,pos\n  ,neg\nbad,neg\n")
    task = load_task(config_from_dict({"data": {"dataset": str(data), "drop_invalid_rows": True}}).data)
    assert task.train["text"][:] == ["good", "fine", "bad"]
    assert any("2 row(s)" in n for n in task.notes)


def test_one_class_is_refused(tmp_path, capsys):
    data = csv_dataset(tmp_path, "text,label\ngood,pos\nfine,pos\ngreat,pos\n")
    rc, err = cli(["run", recipe(tmp_path, data={"dataset": str(data), "pool_fraction": 1.0, "max_test_samples": None})], capsys)
    assert rc == 2 and "data.label_column" in error_line(err) and "1 class ('pos')" in err


def test_a_pool_too_small_for_the_initial_set_is_refused(tmp_path, capsys):
    data = csv_dataset(tmp_path, "text,label\ngood,pos\nbad,neg\nfine,pos\n")
    rc, err = cli(["run", recipe(tmp_path, data={"dataset": str(data), "pool_fraction": 1.0, "max_test_samples": None}, loop={"initial_fraction": 0.1})], capsys)
    assert rc == 2 and "loop.initial_fraction" in error_line(err) and "fewer than the task's 2 classes" in err


def test_non_utf8_bytes_name_the_file_and_offset(tmp_path, capsys):
    data = csv_dataset(tmp_path, "", encoding=b"text,label\ncaf\xe9 ok,pos\nbad,neg\n")
    rc, err = cli(["run", recipe(tmp_path, data={"dataset": str(data), "pool_fraction": 1.0, "max_test_samples": None})], capsys)
    assert rc == 2 and "train.csv is not UTF-8" in err and "byte offset 14" in err


def test_a_missing_local_file_says_not_found(tmp_path, capsys):
    rc, err = cli(["run", recipe(tmp_path, data={"dataset": str(tmp_path / "nope.csv")})], capsys)
    assert rc == 2 and "not found" in err and "Hub" not in err


def test_an_empty_recipe_is_refused(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("")
    rc, err = cli(["run", tmp_path / "empty.yaml"], capsys)
    assert rc == 2 and "is empty" in err
    assert not (tmp_path / "runs").exists()


def test_strict_types_name_the_field(tmp_path, capsys):
    rc, err = cli(["run", recipe(tmp_path, classifier={"max_steps": "3"})], capsys)
    assert rc == 2 and "classifier.max_steps" in error_line(err)
    rc, err = cli(["run", recipe(tmp_path, acquisition={"strategies": "random"})], capsys)
    assert rc == 2 and "acquisition.strategies" in error_line(err)


# ---------------------------------------------------------------------- the Hub
def test_pending_hub_pushes_are_said_last_and_exit_non_zero(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_" + "y" * 30)
    hub = {"backend": "hub", "dataset_repo_id": "someone/pools", "endpoint": "http://127.0.0.1:9", "max_retries": 0, "retry_backoff_s": 0.01}
    r = recipe(tmp_path, store=hub)
    rc = main(["run", str(r)])
    err = capsys.readouterr().err
    assert rc == 3 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("warning: 2 round(s) are not on the Hub yet")
    assert LocalStore(tmp_path / "run" / "store").rounds("random-seed0") == [0, 1]  # kept locally
    r = recipe(tmp_path, name="allowed", store={**hub, "allow_pending": True}, output={"output_dir": str(tmp_path / "run2"), "plot": False})
    assert main(["run", str(r)]) == 0
