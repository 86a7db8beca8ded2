"""End to end with a Hub round store: a generative SIGnAL run pushing to the test server is
SIGKILLed, resumed from its folder, killed again, resumed from the Hub repo id into a fresh folder,
and its rounds pulled back by revision with ``signal-hf pull``.

Run by ``tests/test_resume_hub.py`` in a child pytest whose environment points HF_ENDPOINT,
HF_TOKEN and HF_HOME at the test server before huggingface_hub is imported (see
``tests/test_store_hub.py``). Not collected on its own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

_REQUIRED = ("HF_ENDPOINT", "HF_TOKEN", "HF_HOME", "HUB_TEST_SERVER_ROOT", "HUB_TEST_SERVER_PORT")
if any(not os.environ.get(name) for name in _REQUIRED):
    pytest.skip("run through tests/test_resume_hub.py (needs the hub test server environment)", allow_module_level=True)

from huggingface_hub import HfApi  # noqa: E402
from hub_fixtures import assert_same_datasets  # noqa: E402
from test_resume import assert_matches_reference, result_lines, run_cli  # noqa: E402
from test_signal_loop import signal_cfg  # noqa: E402

from hub_server import env_server  # noqa: E402
from signal_hf.annotator import train_annotator  # noqa: E402
from signal_hf.config import to_yaml  # noqa: E402
from signal_hf.loop import run_experiment  # noqa: E402
from signal_hf.store import HubStore, LocalStore, read_round_folder  # noqa: E402

pytestmark = [pytest.mark.hub, pytest.mark.generator, pytest.mark.slow]

DATASET_REPO = "signal-e2e/pools"
MODEL_REPO = "signal-e2e/generator"
RUN = "signal-gen-seed0"
TOKEN = os.environ["HF_TOKEN"]


@pytest.fixture(scope="module")
def server():
    yield from env_server(TOKEN)


def branches(repo: str, repo_type: str) -> set[str]:
    return {b.name for b in HfApi().list_repo_refs(repo, repo_type=repo_type).branches}


def test_hub_run_killed_resumed_from_repo_and_pulled_by_revision(server, tmp_path):
    annotator = tmp_path / "annotator"
    ref_cfg = signal_cfg(tmp_path / "ref", annotator)
    train_annotator(ref_cfg, max_train_samples=64, epochs=1)
    run_experiment(ref_cfg, show_progress=False)  # uninterrupted, local store

    out = tmp_path / "run"
    cfg = signal_cfg(out, annotator)
    cfg.store.backend, cfg.store.dataset_repo_id, cfg.store.model_repo_id = "hub", DATASET_REPO, MODEL_REPO
    cfg.store.retry_backoff_s = 0.05
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(to_yaml(cfg))
    procs = []

    # 1. Killed while pushing round 1: its adapter is on the Hub, its dataset commit is not.
    procs.append(run_cli(["run", str(recipe)], kill_at="push:1"))
    assert f"{RUN}-round-1" in branches(MODEL_REPO, "model")
    assert f"{RUN}-round-1" not in branches(DATASET_REPO, "dataset")
    assert f"{RUN}-round-0" in branches(DATASET_REPO, "dataset")
    pending = json.loads((out / "store" / ".hub_pending.json").read_text())
    assert pending == [{"run_id": RUN, "round": 1}]
    assert [r["round"] for r in result_lines(out)] == [0]

    # 2. Resumed from the folder: the pending round is pushed first; killed training round 2.
    procs.append(run_cli(["resume", str(out)], kill_at="train:2"))
    assert f"{RUN}-round-1" in branches(DATASET_REPO, "dataset")
    assert json.loads((out / "store" / ".hub_pending.json").read_text()) == []
    assert [r["round"] for r in result_lines(out)] == [0, 1]  # round 1's row restored from its state
    assert LocalStore(out / "store").rounds(RUN) == [0, 1]

    # 3. Resumed on a "new machine": only the repo id, in a fresh working folder.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    procs.append(run_cli(["resume", DATASET_REPO], cwd=fresh))
    resumed = fresh / "runs" / DATASET_REPO.replace("/", "__")
    assert (resumed / "recipe.yaml").is_file() and (resumed / "summary.md").is_file()
    local = LocalStore(resumed / "store")
    assert local.rounds(RUN) == [2]  # rounds 0-1 came from the Hub
    hub = HubStore(local, DATASET_REPO, MODEL_REPO)
    assert hub.hub_rounds(RUN) == [0, 1, 2] and hub.pending() == []
    assert_matches_reference(resumed, tmp_path / "ref", [RUN], last_round=2, store=hub)

    # 4. signal-hf pull round 2 by revision: the same data and adapter bytes as the local copy.
    revision = f"{RUN}-round-2"
    pulled_data, pulled_model = tmp_path / "pulled-data", tmp_path / "pulled-model"
    procs.append(run_cli(["pull", DATASET_REPO, "--revision", revision, "--local-dir", str(pulled_data)]))
    procs.append(
        run_cli(["pull", MODEL_REPO, "--revision", revision, "--repo-type", "model", "--local-dir", str(pulled_model)])
    )
    assert procs[-1].stdout.strip() == str(pulled_model)
    copy = local.load_round(RUN, 2)
    got = read_round_folder(pulled_data, expect=(RUN, 2))
    assert_same_datasets(got.datasets, copy.datasets)
    assert got.state == copy.state
    adapter_files = sorted(p.name for p in copy.adapter_path.iterdir())
    assert "adapter_model.safetensors" in adapter_files
    pulled_files = sorted(p.name for p in pulled_model.iterdir() if p.is_file() and p.name != ".gitattributes")
    assert pulled_files == adapter_files
    for name in adapter_files:
        assert (pulled_model / name).read_bytes() == (copy.adapter_path / name).read_bytes(), name
    # ...and the same as the uninterrupted run's round 2 (the adapter RL trained after two resumes).
    ref_round = LocalStore(tmp_path / "ref" / "store").load_round(RUN, 2)
    assert got.datasets["labeled"].to_dict() == ref_round.datasets["labeled"].to_dict()
    assert got.datasets["synthetic_pool"].to_dict() == ref_round.datasets["synthetic_pool"].to_dict()
    assert (pulled_model / "adapter_model.safetensors").read_bytes() == (
        ref_round.adapter_path / "adapter_model.safetensors"
    ).read_bytes()
    # Round 1, pushed late by step 2, holds the first run's local round 1.
    pulled1 = tmp_path / "pulled-1"
    procs.append(run_cli(["pull", DATASET_REPO, "--revision", f"{RUN}-round-1", "--local-dir", str(pulled1)]))
    assert_same_datasets(read_round_folder(pulled1).datasets, LocalStore(out / "store").load_round(RUN, 1).datasets)

    for proc in procs:
        assert TOKEN not in proc.stdout + proc.stderr
