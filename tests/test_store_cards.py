"""Hub cards of saved rounds: the dataset card (README.md of a round) and the adapter's model card,
read back with huggingface_hub's own card classes and checked by the round's manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import load_dataset
from hub_fixtures import round_datasets, tiny_base_model, tiny_lora_adapter
from huggingface_hub import DatasetCard, ModelCard

from signal_hf.config.experiment import ExperimentConfig
from signal_hf.errors import StoreError
from signal_hf.store import LocalStore
from signal_hf.store.cards import hub_model_id
from signal_hf.store.layout import MANIFEST_FILE, split_filename
from signal_hf.store.manifest import file_hashes

RUN = "signal-seed0"
GENERATOR_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("card_adapter")
    base = tiny_base_model(folder / "base")
    tiny_lora_adapter(base, folder / "a", seed=3)
    return {"base": base, "adapter": folder / "a"}


def loop_state(accuracy: float, generator: str, **metrics) -> dict:
    """A state shaped like the loop's save stage writes it (records.round_state): accuracy, the recipe, row metrics."""
    cfg = ExperimentConfig()
    cfg.data.dataset = "stanfordnlp/sst2"
    recipe = cfg.to_dict()
    recipe["generator"]["model_name_or_path"] = generator
    return {"accuracy": accuracy, "recipe_hash": "0123abcd", "recipe": recipe, "method": "signal", "seed": 0, **metrics}


def test_round_cards_read_back(tmp_path, adapter):
    store = LocalStore(tmp_path)
    data = round_datasets(2, with_synthetic=False)
    state = loop_state(0.8125, GENERATOR_ID, rl_reward_mean=0.125, rl_reward_std=None, rl_kl=0.02, rl_s=1.5, labeled=3)
    store.save_round(RUN, 2, datasets=data, state=state, adapter_dir=adapter["adapter"])
    folder = store.round_dir(RUN, 2)

    card = DatasetCard.load(folder / "README.md")
    assert card.data.signal_hf["test_accuracy"] == 0.8125
    assert card.data.signal_hf["round"] == 2 and card.data.signal_hf["revision"] == f"{RUN}-round-2"
    assert card.data.task_categories == ["text-classification"]
    assert card.data.source_datasets == ["extended|stanfordnlp/sst2"]
    configs = {c["config_name"]: c for c in card.data.configs}
    # The empty synthetic pool has no file, so no config (a config without files would not load).
    assert sorted(configs) == ["default", "labeled", "real_pool"] and configs["default"]["default"] is True
    assert configs["labeled"]["data_files"] == [{"split": "train", "path": split_filename("labeled")}]
    assert [f["split"] for f in configs["default"]["data_files"]] == ["labeled", "real_pool"]
    assert "synthetic_pool" in card.text and "name: experiment" in card.text  # the split table and the recipe
    assert f'revision="{RUN}-round-2"' in card.text
    # The configs point at the files the store wrote: datasets loads a split through its config.
    labeled = load_dataset(str(folder), "labeled", split="train", cache_dir=str(tmp_path / "c"))
    assert labeled.to_dict() == data["labeled"].to_dict()

    model = ModelCard.load(folder / "adapter" / "README.md")
    assert model.data.base_model == GENERATOR_ID and model.data.library_name == "peft"
    assert "lora" in model.data.tags
    assert model.data.signal_hf["round"] == 2 and model.data.signal_hf["test_accuracy"] == 0.8125
    assert model.data.signal_hf["rl"] == {"rl_reward_mean": 0.125, "rl_reward_std": None, "rl_kl": 0.02, "rl_s": 1.5}
    assert "| `rl_reward_mean` | 0.125 |" in model.text
    assert 'subfolder="adapter"' in model.text
    # The card's local snippet works: peft loads the adapter from the round folder's subfolder.
    from peft import PeftModel
    from transformers import BertForSequenceClassification

    loaded = PeftModel.from_pretrained(BertForSequenceClassification.from_pretrained(adapter["base"]), str(folder), subfolder="adapter")
    assert loaded.peft_config["default"].r == 2


def test_base_model_metadata_only_for_hub_ids(tmp_path, adapter):
    store = LocalStore(tmp_path)
    store.save_round(RUN, 0, datasets=round_datasets(0), state=loop_state(0.5, "bundled:gemma3-270m"), adapter_dir=adapter["adapter"])
    card = ModelCard.load(store.round_dir(RUN, 0) / "adapter" / "README.md")
    assert card.data.base_model is None and card.data.library_name == "peft"
    assert card.data.signal_hf["base_model_name_or_path"] == "bundled:gemma3-270m"
    assert "`bundled:gemma3-270m`" in card.text and "no `base_model` metadata" in card.text
    assert "records no RL step" in card.text  # round 0: no rl_* metrics
    # No recipe: the base model comes from adapter_config.json, here a local folder - not a Hub id either.
    store.save_round(RUN, 1, datasets={}, state={"accuracy": 0.6}, adapter_dir=adapter["adapter"])
    card = ModelCard.load(store.round_dir(RUN, 1) / "adapter" / "README.md")
    assert card.data.base_model is None
    assert card.data.signal_hf["base_model_name_or_path"] == str(adapter["base"])
    ds_card = DatasetCard.load(store.round_dir(RUN, 1) / "README.md")
    assert "configs" not in ds_card.data.to_dict() and ds_card.data.signal_hf["test_accuracy"] == 0.6


def test_hub_model_id():
    assert hub_model_id(GENERATOR_ID) == GENERATOR_ID
    assert hub_model_id("gpt2") == "gpt2"
    for name in ("bundled:gemma3-270m", "/models/gemma", "./gemma", "a/b/c", "", None):
        assert hub_model_id(name) is None, name


def test_cards_are_covered_by_the_manifest(tmp_path, adapter):
    store = LocalStore(tmp_path)
    store.save_round(RUN, 0, datasets=round_datasets(0), state={"accuracy": 0.5}, adapter_dir=adapter["adapter"])
    folder = store.round_dir(RUN, 0)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())["sha256"]
    assert {"README.md", "adapter/README.md"} <= set(manifest)
    for card in ("README.md", "adapter/README.md"):
        original = (folder / card).read_bytes()
        (folder / card).write_bytes(original.replace(b"0.5000", b"0.9999"))
        with pytest.raises(StoreError, match=f"{card} does not match its SHA-256"):
            store.load_round(RUN, 0)
        (folder / card).write_bytes(original)
    assert store.load_round(RUN, 0).state == {"accuracy": 0.5}


def test_rounds_saved_without_cards_still_verify(tmp_path):
    """A round an earlier version wrote (format 2, no README.md in its manifest) loads unchanged."""
    store = LocalStore(tmp_path)
    data = round_datasets(1)
    store.save_round(RUN, 1, datasets=data, state={"accuracy": 0.7})
    folder = store.round_dir(RUN, 1)
    (folder / "README.md").unlink()
    (folder / MANIFEST_FILE).write_text(json.dumps({"sha256": file_hashes(folder)}))
    record = store.load_round(RUN, 1)
    assert record.state == {"accuracy": 0.7} and record.datasets["labeled"].to_dict() == data["labeled"].to_dict()
    store.verify_run(RUN)
