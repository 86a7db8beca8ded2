"""LocalStore and the round-store contract: round trips, atomicity, revision resolution, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from datasets import load_dataset
from hub_fixtures import (
    assert_same_datasets,
    assert_same_files,
    round_datasets,
    tiny_base_model,
    tiny_lora_adapter,
)

from signal_hf.errors import ConfigError, StoreError
from signal_hf.store import (
    HubStore,
    LocalStore,
    StoreConfig,
    commit_message,
    load_adapter,
    make_store,
    parse_revision_name,
    revision_name,
)
from signal_hf.store.layout import split_filename

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("adapters")
    base = tiny_base_model(folder / "base")
    tiny_lora_adapter(base, folder / "a0", seed=1)
    tiny_lora_adapter(base, folder / "a1", seed=2)
    return {"base": base, "a0": folder / "a0", "a1": folder / "a1"}


def test_revision_names_round_trip():
    assert revision_name("", 3) == "round-3"
    assert revision_name("signal-seed0", 3) == "signal-seed0-round-3"
    assert parse_revision_name("round-3") == ("", 3)
    assert parse_revision_name("signal-seed0-round-12") == ("signal-seed0", 12)
    # A run id that itself ends like a revision still parses back unambiguously.
    assert parse_revision_name(revision_name("a-round-1", 2)) == ("a-round-1", 2)
    assert parse_revision_name("main") is None
    with pytest.raises(StoreError, match="run_id 'a/b'"):
        revision_name("a/b", 0)
    with pytest.raises(StoreError, match="round_idx"):
        revision_name("x", -1)


def test_local_round_trip(tmp_path, adapters):
    store = LocalStore(tmp_path / "store")
    data = round_datasets(0, with_synthetic=False)
    state = {"accuracy": np.float32(0.75), "selected_ids": np.array([3, 1]), "metrics": {"f1": 0.5}, "note": None}
    rev = store.save_round("signal-seed0", 0, datasets=data, state=state, adapter_dir=adapters["a0"], message="m")
    assert rev == "signal-seed0-round-0"

    record = store.load_round("signal-seed0", rev)
    assert (record.run_id, record.round, record.revision) == ("signal-seed0", 0, rev)
    assert_same_datasets(record.datasets, data)
    assert record.datasets["synthetic_pool"].num_rows == 0  # empty split keeps its schema
    assert record.state == {"accuracy": 0.75, "selected_ids": [3, 1], "metrics": {"f1": 0.5}, "note": None}
    # The adapter is copied byte for byte, but for its README.md: the store's model card replaces peft's.
    assert_same_files(record.adapter_path, adapters["a0"], ignore=frozenset({"README.md"}))
    assert "signal_hf generator adapter: round 0" in (record.adapter_path / "README.md").read_text()

    folder = store.round_dir("signal-seed0", 0)
    # The Hub's parquet layout: the plain datasets loaders read the round folder directly.
    loaded = load_dataset(str(folder), cache_dir=str(tmp_path / "hf_cache"))
    assert sorted(loaded) == ["labeled", "real_pool"]  # datasets cannot hold an empty split
    assert loaded["labeled"].to_dict() == data["labeled"].to_dict()
    assert loaded["labeled"].features == data["labeled"].features
    pq = load_dataset(
        "parquet", data_files={"train": str(folder / split_filename("real_pool"))}, split="train", cache_dir=str(tmp_path / "hf_cache")
    )
    assert pq["text"] == data["real_pool"]["text"]


def test_round_without_adapter_and_default_run(tmp_path):
    store = LocalStore(tmp_path)
    data = round_datasets(1)
    assert store.save_round("", 1, datasets=data, state={"k": 1}) == "round-1"
    record = store.load_round("")
    assert record.adapter_path is None and record.round == 1
    assert_same_datasets(record.datasets, data)
    assert store.runs() == [""]


def test_revision_resolution_and_errors(tmp_path):
    store = LocalStore(tmp_path)
    assert store.latest_round("r") is None and store.revisions("r") == [] and store.runs() == []
    with pytest.raises(StoreError, match="no saved rounds"):
        store.load_round("r")
    for i in (0, 2, 10):
        store.save_round("r", i, datasets=round_datasets(i), state={"round": i})
    store.save_round("other", 0, datasets={}, state={})
    assert store.latest_round("r") == 10
    assert store.revisions("r") == ["r-round-0", "r-round-2", "r-round-10"]  # numeric, not lexical order
    assert store.runs() == ["other", "r"]
    for rev in (2, "2", "round-2", "r-round-2"):
        assert store.load_round("r", rev).state == {"round": 2}
    assert store.load_round("r").state == {"round": 10}
    with pytest.raises(StoreError) as err:
        store.load_round("r", "r-round-3")
    assert "available revisions: r-round-0, r-round-2, r-round-10" in str(err.value)
    with pytest.raises(StoreError, match="not found"):
        store.load_round("r", "other-round-0")  # another run's revision
    with pytest.raises(StoreError, match="not found"):
        store.load_round("r", "main")


def test_replacing_a_round_is_whole(tmp_path, adapters):
    store = LocalStore(tmp_path)
    store.save_round("r", 1, datasets=round_datasets(1), state={"v": 1}, adapter_dir=adapters["a0"])
    new = {"labeled": round_datasets(5)["labeled"]}
    store.save_round("r", 1, datasets=new, state={"v": 2})
    record = store.load_round("r", 1)
    assert record.state == {"v": 2}
    assert_same_datasets(record.datasets, new)
    assert record.adapter_path is None
    run_dir = store.run_dir("r")
    # Nothing of the old round survives: no stale split file, no adapter, no aside folders.
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "round-1"]
    assert not (run_dir / "round-1" / split_filename("real_pool")).exists()
    assert not (run_dir / "round-1" / "adapter").exists()


def test_failed_write_leaves_previous_round(tmp_path, monkeypatch):
    store = LocalStore(tmp_path)
    store.save_round("r", 0, datasets=round_datasets(0), state={"v": 0})
    import signal_hf.store.dataset_io as dataset_io

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dataset_io, "write_dataset_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        store.save_round("r", 0, datasets=round_datasets(9), state={"v": 9})
    with pytest.raises(OSError):
        store.save_round("r", 1, datasets=round_datasets(1), state={"v": 1})
    assert store.load_round("r", 0).state == {"v": 0}
    assert store.latest_round("r") == 0
    assert sorted(p.name for p in store.run_dir("r").iterdir()) == [".lock", "round-0"]


def test_killed_write_leaves_round_absent_and_is_cleaned(tmp_path):
    """A process killed mid-write (os._exit, no cleanup) leaves only a temp folder behind."""
    root = tmp_path / "store"
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(REPO_ROOT / "tests")!r})
        from hub_fixtures import round_datasets
        import signal_hf.store.dataset_io as dataset_io
        from signal_hf.store import LocalStore
        store = LocalStore({str(root)!r})
        store.save_round("r", 0, datasets=round_datasets(0), state={{"v": 0}})
        real_write = dataset_io.write_dataset_parquet
        calls = []
        def die_on_second_split(ds, path):
            real_write(ds, path)
            calls.append(path)
            if len(calls) == 2:
                os._exit(9)  # like SIGKILL: no exception handlers, no cleanup
        dataset_io.write_dataset_parquet = die_on_second_split
        store.save_round("r", 1, datasets=round_datasets(1), state={{"v": 1}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    run_dir = root / "r"
    leftovers = [p for p in run_dir.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and len(list((leftovers[0] / "data").iterdir())) == 2

    store = LocalStore(root)
    assert store.latest_round("r") == 0
    assert store.revisions("r") == ["r-round-0"]
    with pytest.raises(StoreError, match="available revisions: r-round-0"):
        store.load_round("r", 1)
    # The next write cleans the leftover and succeeds.
    store.save_round("r", 1, datasets=round_datasets(1), state={"v": 1})
    assert store.latest_round("r") == 1
    assert not any(p.name.startswith(".tmp-") for p in run_dir.iterdir())


def test_replace_interrupted_between_renames_is_repaired(tmp_path):
    store = LocalStore(tmp_path)
    store.save_round("r", 0, datasets=round_datasets(0), state={"v": 0})
    run_dir = store.run_dir("r")
    # State right after _publish's first rename (old round moved aside) when the process died.
    os.replace(run_dir / "round-0", run_dir / ".old-round-0-0123abcd")
    fresh = LocalStore(tmp_path)
    assert fresh.latest_round("r") == 0
    assert fresh.load_round("r", 0).state == {"v": 0}
    assert (run_dir / "round-0").is_dir() and not (run_dir / ".old-round-0-0123abcd").exists()


def test_input_errors_name_the_input(tmp_path):
    store = LocalStore(tmp_path)
    ds = round_datasets(0)["labeled"]
    with pytest.raises(StoreError, match="'bad-name'"):
        store.save_round("r", 0, datasets={"bad-name": ds}, state={})
    with pytest.raises(StoreError, match=r"datasets\['x'\] must be a datasets.Dataset"):
        store.save_round("r", 0, datasets={"x": [1, 2]}, state={})
    with pytest.raises(StoreError, match=r"state\['obj'\]\['when'\] has type object"):
        store.save_round("r", 0, datasets={}, state={"obj": {"when": object()}})
    with pytest.raises(StoreError, match=r"state\['loss'\] is nan"):
        store.save_round("r", 0, datasets={}, state={"loss": float("nan")})
    empty = tmp_path / "not_an_adapter"
    empty.mkdir()
    with pytest.raises(StoreError, match="no adapter_config.json"):
        store.save_round("r", 0, datasets={}, state={}, adapter_dir=empty)
    assert store.latest_round("r") is None  # nothing half-written


def test_make_store_and_config_errors(tmp_path):
    store = make_store(StoreConfig(), tmp_path / "out")
    assert isinstance(store, LocalStore) and store.root == tmp_path / "out" / "store"
    assert make_store(StoreConfig(root=str(tmp_path / "elsewhere")), tmp_path).root == tmp_path / "elsewhere"
    hub = make_store(StoreConfig(backend="hub", dataset_repo_id="u/pools", model_repo_id="u/gen"), tmp_path)
    assert isinstance(hub, HubStore) and hub.local.root == tmp_path / "store"
    # A local store has no remote: nothing pending, nothing to push.
    assert store.pending() == [] and store.push_pending() is None
    # Fields set after construction are checked again when the store is made.
    config = StoreConfig()
    config.backend = "hub"
    with pytest.raises(ConfigError, match="store.dataset_repo_id"):
        make_store(config, tmp_path)


@pytest.mark.parametrize(
    "values, field, text",
    [
        ({"backend": "s3"}, "store.backend", "unknown backend 's3' (fix: use local or hub)"),
        ({"backend": "hub"}, "store.dataset_repo_id", "the hub backend needs a dataset repo"),
        ({"backend": "hub", "dataset_repo_id": "a/b/c"}, "store.dataset_repo_id", "must be 'namespace/name'"),
        ({"backend": "hub", "dataset_repo_id": "u/p", "model_repo_id": "nonamespace"}, "store.model_repo_id", "got 'nonamespace'"),
        ({"backend": "hub", "dataset_repo_id": "u/p", "max_retries": -1}, "store.max_retries", "must be >= 0"),
        ({"backend": "hub", "dataset_repo_id": "u/p", "retry_backoff_s": -0.5}, "store.retry_backoff_s", "must be >= 0"),
    ],
)
def test_store_config_checks_its_values(values, field, text):
    with pytest.raises(ConfigError) as err:
        StoreConfig(**values)
    assert err.value.field == field and text in str(err.value)


def test_store_config_local_ignores_hub_fields():
    StoreConfig()
    StoreConfig(dataset_repo_id="not a repo", max_retries=-1)  # unused by the local backend


def test_commit_message_says_round_run_and_accuracy():
    assert commit_message("signal-seed0", 3, {"accuracy": 0.8125}) == "round 3 of run signal-seed0, accuracy 0.8125"
    assert commit_message("", 0, {"metrics": {"accuracy": 0.5}}, "seed set") == (
        "round 0 of run (default), accuracy 0.5000: seed set"
    )
    assert commit_message("r", 1, {"loss": 1.0}) == "round 1 of run r"


def test_load_adapter_from_local_paths(tmp_path, adapters):
    store = LocalStore(tmp_path)
    store.save_round("signal-seed0", 2, datasets={}, state={}, adapter_dir=adapters["a1"])
    store.save_round("signal-seed0", 3, datasets={}, state={})
    round_dir = store.round_dir("signal-seed0", 2)
    expected = round_dir / "adapter"
    assert load_adapter(adapters["a1"]) == adapters["a1"]
    assert load_adapter(round_dir) == expected
    assert load_adapter(tmp_path, "signal-seed0-round-2") == expected
    assert load_adapter(store.run_dir("signal-seed0"), "round-2") == expected
    with pytest.raises(StoreError, match="no saved adapter"):
        load_adapter(tmp_path, "signal-seed0-round-3")
    with pytest.raises(StoreError, match="not found"):
        load_adapter(tmp_path, "signal-seed0-round-7")

    from peft import PeftModel
    from transformers import BertForSequenceClassification

    model = PeftModel.from_pretrained(BertForSequenceClassification.from_pretrained(adapters["base"]), expected)
    original = json.loads((adapters["a1"] / "adapter_config.json").read_text())
    assert model.peft_config["default"].r == original["r"] == 2
