"""Task loading (offline copies, local files), checksums, the QNLI fallback split and pool sampling."""

from __future__ import annotations

import shutil

import pytest

from signal_hf.config import DataConfig
from signal_hf.data import FALLBACK_SPLIT_SEED, load_task, pool_size, sample_pool
from signal_hf.errors import ConfigError, DataError


def test_sst2_offline_copy(data_dir):
    task = load_task(DataConfig(dataset="sst2", data_dir=str(data_dir)))
    assert len(task.train) == 67_349 and len(task.test) == 872
    assert task.spec.label_names == ("negative", "positive")
    row = task.train[0]
    assert row["id"] == "sst2-train-0" and row["text"].startswith("hide new secretions")
    assert row["label"] == 0 and row["source"] == "real"
    assert set(task.test["label"][:]) == {0, 1}


def test_ag_news_labels_and_sizes(data_dir):
    task = load_task(DataConfig(dataset="ag_news", data_dir=str(data_dir)))
    assert task.spec.label_names == ("World", "Sports", "Business", "Sci/Tech")
    assert task.original_train_size == 120_000
    # The official test split has 1,900 rows per class; class "3" in the csv is Business.
    labels = task.test["label"][:]
    assert [labels.count(i) for i in range(4)] == [1900] * 4
    assert task.test[0]["label"] == 2 and task.test[0]["text"].startswith("Unions representing workers")
    assert pool_size(task, 0.001) == 120 and pool_size(task, 0.01) == 1200


def test_qnli_fallback_split_is_disjoint_seeded_and_reported(data_dir):
    a = load_task(DataConfig(dataset="qnli", data_dir=str(data_dir)))
    b = load_task(DataConfig(dataset="qnli", data_dir=str(data_dir)))
    assert a.spec.is_pair and a.spec.task_type == "pair"
    ids_train, ids_test = set(a.train["id"][:]), set(a.test["id"][:])
    assert not ids_train & ids_test
    assert len(ids_train) + len(ids_test) == 5463
    assert a.test["id"][:] == b.test["id"][:]
    assert any(str(FALLBACK_SPLIT_SEED) in n for n in a.notes)
    assert a.train[0]["text_pair"]


def test_checksum_mismatch_and_missing_file(tmp_path, data_dir, monkeypatch):
    monkeypatch.delenv("SIGNAL_HF_DATA_DIR", raising=False)  # it would override data_dir
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    for p in copy.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    with open(copy / "sst2" / "validation.tsv", "a") as f:
        f.write("an extra sentence\t1\n")
    with pytest.raises(DataError, match="does not match its SHA256SUMS"):
        load_task(DataConfig(dataset="sst2", data_dir=str(copy)))
    # Without verification the altered file loads (one more row).
    assert len(load_task(DataConfig(dataset="sst2", data_dir=str(copy), verify_checksums=False)).test) == 873
    (copy / "qnli" / "validation.tsv").unlink()
    with pytest.raises(DataError, match="missing"):
        load_task(DataConfig(dataset="qnli", data_dir=str(copy)))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_local_files_with_string_labels(tmp_path, fmt):
    import pandas as pd

    train = pd.DataFrame({"q": ["a", "b", "c", "d"], "s": ["w", "x", "y", "z"], "y": ["yes", "no", "yes", "no"]})
    test = pd.DataFrame({"q": ["e"], "s": ["v"], "y": ["no"]})
    for name, df in (("train", train), ("test", test)):
        path = tmp_path / f"{name}.{fmt}"
        {"csv": lambda: df.to_csv(path, index=False), "jsonl": lambda: df.to_json(path, orient="records", lines=True), "parquet": lambda: df.to_parquet(path)}[fmt]()
    task = load_task(DataConfig(dataset=str(tmp_path), text_column="q", text_pair_column="s", label_column="y"))
    assert task.spec.label_names == ("no", "yes") and task.spec.is_pair
    assert task.train["label"][:] == [1, 0, 1, 0]
    assert task.train[2]["text_pair"] == "y"
    # An explicit label list fixes the order.
    task = load_task(DataConfig(dataset=str(tmp_path), text_column="q", label_column="y", label_names=["yes", "no"]))
    assert task.train["label"][:] == [0, 1, 0, 1]
    with pytest.raises(ConfigError) as e:
        load_task(DataConfig(dataset=str(tmp_path), text_column="q", label_column="y", label_names=["yes"]))
    assert e.value.field == "data.label_names"
    with pytest.raises(ConfigError) as e:
        load_task(DataConfig(dataset=str(tmp_path), text_column="q", text_pair_column="nope", label_column="y"))
    assert e.value.field == "data.text_pair_column"


def test_pool_is_seeded_sized_and_too_large_is_named(data_dir):
    task = load_task(DataConfig(dataset="sst2", data_dir=str(data_dir)))
    a, b, c = sample_pool(task, 0.001, 0), sample_pool(task, 0.001, 0), sample_pool(task, 0.001, 1)
    assert len(a) == 67 and a["id"][:] == b["id"][:] and a["id"][:] != c["id"][:]
    assert len(sample_pool(task, 0.01, 0)) == 673
    ag = load_task(DataConfig(dataset="ag_news", data_dir=str(data_dir)))
    with pytest.raises(ConfigError) as e:
        sample_pool(ag, 0.5, 0)  # 60k rows from a 10k sample
    assert e.value.field == "data.pool_fraction"


def test_max_test_samples_is_a_fixed_subset(data_dir):
    a = load_task(DataConfig(dataset="sst2", data_dir=str(data_dir), max_test_samples=100))
    b = load_task(DataConfig(dataset="sst2", data_dir=str(data_dir), max_test_samples=100))
    assert len(a.test) == 100 and a.test["id"][:] == b.test["id"][:]


def test_task_type_is_inferred_from_the_labels_not_assumed(tmp_path):
    from signal_hf.config import DataConfig
    from signal_hf.data import load_task
    from signal_hf.data.files import infer_task_type

    assert infer_task_type(["negative", "positive"], False) == "sentiment"
    assert infer_task_type(["Neutral", "negative", "positive"], False) == "sentiment"
    assert infer_task_type(["billing", "shipping", "returns"], False) == "topic"
    assert infer_task_type(["entailment", "not_entailment"], True) == "pair"
    rows = "text,label\n" + "".join(f"ticket {i} about {'billing' if i % 2 else 'shipping'},{'billing' if i % 2 else 'shipping'}\n" for i in range(8))
    (tmp_path / "train.csv").write_text(rows)
    (tmp_path / "test.csv").write_text(rows)
    task = load_task(DataConfig(dataset=str(tmp_path), verify_checksums=False))
    assert task.spec.task_type == "topic" and any("inferred" in n for n in task.notes)
    chosen = load_task(DataConfig(dataset=str(tmp_path), verify_checksums=False, task_type="sentiment"))
    assert chosen.spec.task_type == "sentiment" and not any("inferred" in n for n in chosen.notes)
