"""HubStore against the Hub-compatible test server, through the real huggingface_hub/datasets/peft.

Run by ``tests/test_store_hub.py`` in a child pytest whose environment points HF_ENDPOINT,
HF_TOKEN, HF_HOME and HF_HUB_DISABLE_XET at the test server *before* huggingface_hub is imported
(it reads them once, at import). Not collected on its own (the file name does not match test_*.py);
to run it by hand, set those variables plus HUB_TEST_SERVER_ROOT / HUB_TEST_SERVER_PORT.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

_REQUIRED = ("HF_ENDPOINT", "HF_TOKEN", "HF_HOME", "HUB_TEST_SERVER_ROOT", "HUB_TEST_SERVER_PORT")
if any(not os.environ.get(name) for name in _REQUIRED):
    pytest.skip("run through tests/test_store_hub.py (needs the hub test server environment)", allow_module_level=True)

import datasets  # noqa: E402
import huggingface_hub  # noqa: E402
from huggingface_hub import HfApi  # noqa: E402
from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError  # noqa: E402
from hub_fixtures import (  # noqa: E402
    assert_same_datasets,
    assert_same_files,
    lora_weights_of,
    round_datasets,
    tiny_base_model,
    tiny_lora_adapter,
)

from hub_server import env_server  # noqa: E402
from signal_hf.errors import StoreError  # noqa: E402
from signal_hf.store import HubStore, LocalStore, load_adapter, pull  # noqa: E402

pytestmark = pytest.mark.hub

RUN = "signal-seed0"
DATASET_REPO = "signal-test/pools"
MODEL_REPO = "signal-test/generator"
TOKEN = os.environ["HF_TOKEN"]


def test_environment_reached_huggingface_hub_before_import():
    # The whole point of the child process: the clients must talk to the test server.
    assert huggingface_hub.constants.ENDPOINT == os.environ["HF_ENDPOINT"]
    assert os.environ["HF_ENDPOINT"].startswith("http://127.0.0.1:")
    assert huggingface_hub.constants.HF_HUB_DISABLE_XET
    assert not huggingface_hub.constants.HF_HUB_OFFLINE


@pytest.fixture(scope="module")
def server():
    yield from env_server(TOKEN)


@pytest.fixture(scope="module")
def api(server) -> HfApi:
    return HfApi()


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapters")
    base = tiny_base_model(folder / "base")
    weights = {i: tiny_lora_adapter(base, folder / f"a{i}", seed=10 + i) for i in range(4)}
    return {"base": base, "weights": weights, **{i: folder / f"a{i}" for i in range(4)}}


def make_store(root: Path, **kwargs) -> HubStore:
    return HubStore(
        LocalStore(root), DATASET_REPO, MODEL_REPO, max_retries=kwargs.pop("max_retries", 2),
        retry_backoff_s=kwargs.pop("retry_backoff_s", 0.01), **kwargs,
    )


@pytest.fixture(scope="module")
def pushed(server, adapters, tmp_path_factory):
    """Two rounds of RUN saved through a HubStore (round 1 with an empty synthetic pool)."""
    root = tmp_path_factory.mktemp("store")
    store = make_store(root)
    inputs = {}
    for i in (0, 1):
        data = round_datasets(i, n_labeled=2 + i, with_synthetic=(i == 0))
        state = {"round": i, "accuracy": 0.5 + i / 4, "selected_ids": [i, i + 1]}
        assert store.save_round(RUN, i, datasets=data, state=state, adapter_dir=adapters[i]) == f"{RUN}-round-{i}"
        inputs[i] = (data, state)
    assert store.pending() == [] and store.last_push_error is None
    return store, inputs


def test_rounds_are_branches_with_descriptive_commits(pushed, api):
    for repo, repo_type in ((DATASET_REPO, "dataset"), (MODEL_REPO, "model")):
        branches = {b.name for b in api.list_repo_refs(repo, repo_type=repo_type).branches}
        assert {f"{RUN}-round-0", f"{RUN}-round-1", "main"} <= branches
        commits = api.list_repo_commits(repo, repo_type=repo_type, revision=f"{RUN}-round-1")
        assert commits[0].title.strip() == "round 1 of run signal-seed0, accuracy 0.7500"
    files = api.list_repo_files(DATASET_REPO, repo_type="dataset", revision=f"{RUN}-round-1")
    assert sorted(files) == [
        ".gitattributes",
        "README.md",  # the round's dataset card
        "data/labeled-00000-of-00001.parquet",
        "data/real_pool-00000-of-00001.parquet",
        "signal_manifest.json",  # the round is verifiable from its Hub copy too
        "signal_round.json",
        "signal_state.json",
    ]
    model_files = api.list_repo_files(MODEL_REPO, revision=f"{RUN}-round-0")
    assert sorted(model_files) == [".gitattributes", "README.md", "adapter_config.json", "adapter_model.safetensors"]


def test_load_round_from_hub_equals_local_copy(pushed, tmp_path):
    store, inputs = pushed
    for i in (0, 1):
        local = store.local.load_round(RUN, i)
        remote = store.load_round_from_hub(RUN, f"{RUN}-round-{i}")
        assert remote.source.startswith(f"hub:{DATASET_REPO}@")
        assert remote.revision == local.revision == f"{RUN}-round-{i}"
        assert_same_datasets(remote.datasets, local.datasets)
        assert_same_datasets(remote.datasets, inputs[i][0])
        assert remote.state == local.state == inputs[i][1]
        # A Hub snapshot also holds the repo's .gitattributes; everything else is byte-identical.
        assert_same_files(remote.adapter_path, local.adapter_path, ignore=frozenset({".gitattributes"}))
    # A machine without the local copy resumes from the Hub: latest round and its data.
    fresh = make_store(tmp_path / "fresh")
    assert fresh.latest_round(RUN) == 1
    assert fresh.revisions(RUN) == [f"{RUN}-round-0", f"{RUN}-round-1"]
    assert RUN in fresh.runs()
    latest = fresh.load_round(RUN)
    assert latest.round == 1 and latest.source.startswith("hub:")
    assert latest.state == inputs[1][1]
    with pytest.raises(StoreError, match=f"available revisions: {RUN}-round-0, {RUN}-round-1"):
        fresh.load_round(RUN, "round-5")
    # A round branch whose commit never landed (still at main's commit) is not a complete round.
    HfApi().create_branch(DATASET_REPO, branch=f"{RUN}-round-7", repo_type="dataset")
    assert fresh.latest_round(RUN) == 1


def test_datasets_load_dataset_reads_a_pushed_round(pushed, tmp_path):
    _store, inputs = pushed
    ds = datasets.load_dataset(DATASET_REPO, revision=f"{RUN}-round-0", cache_dir=str(tmp_path / "c"))
    expected = inputs[0][0]
    assert sorted(ds) == ["labeled", "real_pool", "synthetic_pool"]
    for split in ds:
        assert ds[split].features == expected[split].features
        assert ds[split].to_dict() == expected[split].to_dict()
    # Another revision is another round's data (round 1: its empty synthetic pool has no file).
    ds1 = datasets.load_dataset(DATASET_REPO, revision=f"{RUN}-round-1", cache_dir=str(tmp_path / "c"))
    assert sorted(ds1) == ["labeled", "real_pool"]
    assert ds1["labeled"]["text"] == inputs[1][0]["labeled"]["text"] != ds["labeled"]["text"]


def test_peft_adapter_pushed_and_loaded_by_revision(pushed, adapters):
    from peft import PeftModel
    from transformers import BertForSequenceClassification

    for i in (0, 1):
        base = BertForSequenceClassification.from_pretrained(adapters["base"])
        model = PeftModel.from_pretrained(base, MODEL_REPO, revision=f"{RUN}-round-{i}")
        got = lora_weights_of(model)
        expected = adapters["weights"][i]
        assert sorted(got) == sorted(expected)
        for name, tensor in expected.items():
            assert got[name].equal(tensor), name
    # The adapters differ, so loading the wrong revision could not pass the check above.
    w0, w1 = adapters["weights"][0], adapters["weights"][1]
    assert any(not w0[k].equal(w1[k]) for k in w0)
    folder = load_adapter(MODEL_REPO, f"{RUN}-round-1")
    assert_same_files_subset(folder, adapters[1])


def assert_same_files_subset(snapshot: Path, adapter_dir: Path) -> None:
    """The snapshot holds every adapter file byte for byte, but README.md: the store's model card replaces peft's."""
    for f in adapter_dir.iterdir():
        if f.name != "README.md":
            assert (snapshot / f.name).read_bytes() == f.read_bytes(), f.name
    assert "signal_hf generator adapter" in (snapshot / "README.md").read_text()


def test_pushed_round_cards_load_from_the_hub(server, adapters, tmp_path):
    from huggingface_hub import DatasetCard, ModelCard, hf_hub_download

    from signal_hf.config.experiment import ExperimentConfig

    recipe = ExperimentConfig().to_dict()
    recipe["generator"]["model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    run, rev = "card-run", "card-run-round-1"
    state = {"accuracy": 0.8125, "recipe": recipe, "method": "signal", "seed": 0, "rl_reward_mean": 0.25, "rl_kl": 0.01}
    store = make_store(tmp_path / "cards")
    store.save_round(run, 1, datasets=round_datasets(1), state=state, adapter_dir=adapters[1])
    assert store.pending() == []
    # huggingface_hub 2.4's RepoCard.load reads a repo's main branch only: fetch the round's README.md.
    card = DatasetCard.load(hf_hub_download(DATASET_REPO, "README.md", repo_type="dataset", revision=rev))
    assert card.data.signal_hf["test_accuracy"] == 0.8125 and card.data.signal_hf["round"] == 1
    assert sorted(c["config_name"] for c in card.data.configs) == ["default", "labeled", "real_pool", "synthetic_pool"]
    assert f'load_dataset("{DATASET_REPO}", "labeled", split="train", revision="{rev}")' in card.text
    # The card's configs work on the Hub copy: one split by config name, at the round's revision.
    labeled = datasets.load_dataset(DATASET_REPO, "labeled", split="train", revision=rev, cache_dir=str(tmp_path / "c"))
    assert labeled.to_dict() == round_datasets(1)["labeled"].to_dict()
    model = ModelCard.load(hf_hub_download(MODEL_REPO, "README.md", revision=rev))
    assert model.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and model.data.library_name == "peft"
    assert model.data.datasets == [DATASET_REPO]
    assert model.data.signal_hf["test_accuracy"] == 0.8125 and model.data.signal_hf["rl"]["rl_reward_mean"] == 0.25
    assert f'PeftModel.from_pretrained(base, "{MODEL_REPO}", revision="{rev}")' in model.text
    # The pushed cards are the local ones, byte for byte (and so pass the round's manifest on a Hub load).
    local = store.local.round_dir(run, 1)
    assert Path(hf_hub_download(DATASET_REPO, "README.md", repo_type="dataset", revision=rev)).read_bytes() == (local / "README.md").read_bytes()
    assert store.load_round_from_hub(run, 1).state == state


def test_redone_round_replaces_branch_content(server, adapters, api, tmp_path):
    store = make_store(tmp_path / "redo")
    run = "redo-run"
    store.save_round(run, 0, datasets=round_datasets(0), state={"v": 1}, adapter_dir=adapters[2])
    only_labeled = {"labeled": round_datasets(7)["labeled"]}
    store.save_round(run, 0, datasets=only_labeled, state={"v": 2}, adapter_dir=adapters[3])
    files = api.list_repo_files(DATASET_REPO, repo_type="dataset", revision=f"{run}-round-0")
    assert "data/real_pool-00000-of-00001.parquet" not in files
    remote = store.load_round_from_hub(run, 0)
    assert remote.state == {"v": 2}
    assert_same_datasets(remote.datasets, only_labeled)
    assert_same_files_subset(remote.adapter_path, adapters[3])


def test_push_failure_keeps_local_round_and_is_retried(server, adapters, api, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    store = make_store(tmp_path / "flaky", max_retries=2, retry_backoff_s=0.01)
    run = "flaky-run"
    store.save_round(run, 0, datasets=round_datasets(0), state={"accuracy": 0.5}, adapter_dir=adapters[0])
    server.stop()
    try:
        rev = store.save_round(run, 1, datasets=round_datasets(1), state={"accuracy": 0.6}, adapter_dir=adapters[1])
        assert rev == f"{run}-round-1"
        assert store.pending() == [(run, 1)]
        assert store.last_push_error is not None
        assert store.local.latest_round(run) == 1
        assert store.load_round(run, 1).state == {"accuracy": 0.6}  # served by the local copy
        retries = [r for r in caplog.records if "retrying" in r.getMessage()]
        assert len(retries) == 2  # max_retries transient retries, then left pending
        assert any("will be retried on the next save" in r.getMessage() for r in caplog.records)
    finally:
        server.start()
    store.save_round(run, 2, datasets=round_datasets(2), state={"accuracy": 0.7})
    assert store.pending() == [] and store.last_push_error is None
    branches = {b.name for b in api.list_repo_refs(DATASET_REPO, repo_type="dataset").branches}
    assert {f"{run}-round-0", f"{run}-round-1", f"{run}-round-2"} <= branches
    assert store.load_round_from_hub(run, 1).state == {"accuracy": 0.6}
    # The token never reaches the logs, neither ours nor the libraries' (DEBUG level, all loggers).
    assert TOKEN not in caplog.text
    assert TOKEN not in (store.last_push_error or "")


def test_permanent_error_is_not_retried_and_token_not_logged(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    bad_token = "hf_" + "x" * 30
    store = HubStore(LocalStore(tmp_path), DATASET_REPO, token=bad_token, max_retries=3, retry_backoff_s=0.01)
    store.save_round("denied", 0, datasets=round_datasets(0), state={})
    assert store.pending() == [("denied", 0)]
    assert "401" in store.last_push_error
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]  # 401 is not transient
    assert bad_token not in caplog.text and bad_token not in store.last_push_error
    assert store.local.load_round("denied", 0).round == 0


def test_pull_helper(pushed, tmp_path):
    folder = pull(DATASET_REPO, f"{RUN}-round-0", repo_type="dataset", local_dir=tmp_path / "pulled")
    assert folder == tmp_path / "pulled"
    assert (folder / "data" / "synthetic_pool-00000-of-00001.parquet").is_file()
    from signal_hf.store import read_round_folder

    assert read_round_folder(folder).state == pushed[1][0][1]
    with pytest.raises(StoreError, match=f"available revisions: .*{RUN}-round-1"):
        pull(DATASET_REPO, "round-99", repo_type="dataset", local_dir=tmp_path / "x")
    with pytest.raises(StoreError, match="not found or not accessible"):
        pull("signal-test/does-not-exist", "main", repo_type="dataset")
    with pytest.raises(StoreError, match="repo_type"):
        pull(DATASET_REPO, "main", repo_type="space")


def test_server_gives_hub_error_semantics(server, api):
    from huggingface_hub import CommitOperationAdd, hf_hub_download

    with pytest.raises(RevisionNotFoundError):
        api.create_commit(
            DATASET_REPO, [CommitOperationAdd("x.txt", b"x")], commit_message="m", revision="no-such-branch",
            repo_type="dataset",
        )
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(DATASET_REPO, "nope.txt", repo_type="dataset", revision=f"{RUN}-round-0")
    assert not api.file_exists(DATASET_REPO, "nope.txt", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        api.repo_info(DATASET_REPO, repo_type="dataset", revision="no-such-branch")
    api.create_tag(DATASET_REPO, repo_type="dataset", tag="t-round-0", revision=f"{RUN}-round-0")
    assert "t-round-0" in {t.name for t in api.list_repo_refs(DATASET_REPO, repo_type="dataset").tags}
    # Tags resolve like branches for downloads.
    path = hf_hub_download(DATASET_REPO, "signal_state.json", repo_type="dataset", revision="t-round-0")
    assert Path(path).read_text().strip().startswith("{")
