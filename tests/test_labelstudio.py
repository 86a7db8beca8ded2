"""The Label Studio oracle: its pure parts here, then end to end against a real Label Studio server.

The server tests (marked slow; `make test-labelstudio`) start ``label-studio`` from its own
virtualenv (``make labelstudio-server`` makes ``.venv-labelstudio``; ``LS_PYTHON`` may point at
another interpreter) on 127.0.0.1 with a free port and a temporary SQLite data folder, and act as a
person through its HTTP API (the ``label-studio-sdk`` client): annotations submitted, one skipped.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from datasets import Dataset

from signal_hf.config import config_from_dict
from signal_hf.errors import ConfigError, OracleError
from signal_hf.generation import OracleConfig
from signal_hf.labelstudio import LabelStudioOracle, _config_choices, item_key, labeling_config, task_label
from signal_hf.oracles import HumanOracle, make_oracle
from signal_hf.types import TaskSpec

SST2 = TaskSpec("sst2", ("negative", "positive"), task_type="sentiment")
QNLI = TaskSpec("qnli", ("entailment", "not_entailment"), task_type="pair", is_pair=True, text_field_names=("question", "sentence"))
ROOT = Path(__file__).resolve().parents[1]
LS_PYTHON = Path(os.environ.get("LS_PYTHON") or ROOT / ".venv-labelstudio" / "bin" / "python")
TOKEN = "signal-hf-test-token-0123456789"
START_TIMEOUT_S = 420  # 67-204 s measured on 2 busy shared cores (it runs its migrations at each fresh start)


def _choice(name: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [name]}}]


# ---------------------------------------------------------------- without a server

def test_labeling_config_lists_the_labels_escaped_and_the_pair_field():
    cfg = labeling_config(SST2)
    assert _config_choices(cfg) == ["negative", "positive"]
    assert '$origin' in cfg and 'name="text_pair"' not in cfg
    pair = labeling_config(QNLI)
    assert 'value="$text_pair"' in pair and 'value="Question"' in pair and 'value="Sentence"' in pair
    odd = TaskSpec("odd", ('a "quoted" & <b>', "plain"), task_type="topic")
    assert _config_choices(labeling_config(odd)) == ['a "quoted" & <b>', "plain"]
    assert _config_choices("<View><Text name='text' value='$text'/></View>") is None
    assert _config_choices("not xml") is None


def test_task_label_rules():
    names = SST2.label_names
    assert task_label([], names) == (False, None)  # not annotated yet
    assert task_label([{"id": 1, "was_cancelled": True, "result": []}], names) == (True, None)  # skipped
    first = {"id": 1, "was_cancelled": False, "updated_at": "2026-01-01T00:00:00Z", "result": _choice("negative")}
    later = {"id": 2, "was_cancelled": False, "updated_at": "2026-01-02T00:00:00Z", "result": _choice("positive")}
    skip = {"id": 3, "was_cancelled": True, "updated_at": "2026-01-03T00:00:00Z", "result": []}
    assert task_label([later, first, skip], names) == (True, 1)  # latest submitted wins, skips ignored
    assert task_label([{"id": 4, "result": []}], names) == (True, None)  # submitted without a choice
    with pytest.raises(OracleError, match="not one of"):
        task_label([{"id": 5, "result": _choice("neutral")}], names)


def test_item_key_is_the_content():
    assert item_key("a") == item_key("a") != item_key("b")
    assert item_key("q", "s") != item_key("q", None) != item_key("q", "t")


def test_config_checks_and_no_token_in_the_recipe():
    assert OracleConfig(real="labelstudio", synthetic="labelstudio").labelstudio_url == "http://127.0.0.1:8080"
    for bad, field in (({"synthetic": "browser"}, "oracle.synthetic"), ({"real": "human"}, "oracle.real"),
                       ({"labelstudio_url": "127.0.0.1:8080"}, "oracle.labelstudio_url"),
                       ({"labelstudio_api_key_env": "MY KEY"}, "oracle.labelstudio_api_key_env"),
                       ({"labelstudio_poll_interval": 0}, "oracle.labelstudio_poll_interval"),
                       ({"labelstudio_timeout": -1}, "oracle.labelstudio_timeout")):
        with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
            OracleConfig(**bad)
    cfg = config_from_dict({"oracle": {"real": "labelstudio", "labelstudio_timeout": 60}})
    assert cfg.oracle.real == "labelstudio" and cfg.oracle.labelstudio_timeout == 60
    assert not any("key" in k and k != "labelstudio_api_key_env" for k in cfg.to_dict()["oracle"])


def test_a_missing_token_or_server_is_one_line(monkeypatch):
    monkeypatch.delenv("SIGNAL_HF_TEST_NO_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"oracle\.labelstudio_api_key_env: \$SIGNAL_HF_TEST_NO_TOKEN is not set"):
        make_oracle("labelstudio", SST2, OracleConfig(labelstudio_api_key_env="SIGNAL_HF_TEST_NO_TOKEN"))
    pytest.importorskip("label_studio_sdk")
    monkeypatch.setenv("SIGNAL_HF_TEST_TOKEN", "secret-value-xyz")
    with pytest.raises(OracleError, match=r"cannot reach Label Studio at http://127\.0\.0\.1:\d+ .*make labelstudio") as e:
        make_oracle("labelstudio", SST2, OracleConfig(labelstudio_url=f"http://127.0.0.1:{_free_port()}", labelstudio_api_key_env="SIGNAL_HF_TEST_TOKEN"))
    assert "secret-value-xyz" not in str(e.value) and "\n" not in str(e.value)


def test_people_oracles_are_marked():
    assert HumanOracle(SST2).asks_people and LabelStudioOracle.asks_people
    assert not make_oracle("gold", SST2, OracleConfig()).asks_people


# ---------------------------------------------------------------- against a real server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real Label Studio on 127.0.0.1 (SQLite in a temporary folder), stopped after the module."""
    if not LS_PYTHON.is_file():
        pytest.skip(f"no Label Studio server at {LS_PYTHON} (fix: `make labelstudio-server`, or set LS_PYTHON)")
    pytest.importorskip("label_studio_sdk")
    data, port = tmp_path_factory.mktemp("labelstudio"), _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (data / "server.log").open("w")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(LS_PYTHON), "-m", "label_studio.server", "start", "--internal-host", "127.0.0.1", "--port", str(port), "--no-browser",
         "--username", "person@example.com", "--password", "signal-hf-pass", "--user-token", TOKEN, "--enable-legacy-api-token"],
        env={**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data)}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Label Studio exited with {proc.returncode}: {(data / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/api/version", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - t0 > START_TIMEOUT_S:
                pytest.fail(f"Label Studio did not answer on {url} within {START_TIMEOUT_S} s: {(data / 'server.log').read_text()[-2000:]}")
            time.sleep(1)
        logging.getLogger(__name__).warning("Label Studio answered after %.0f s", time.monotonic() - t0)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def person(server):
    """The labelling team's side: the same server, through the client, as the user the server made."""
    from label_studio_sdk.client import LabelStudio

    return LabelStudio(base_url=server, api_key=TOKEN)


def _project(client, title: str):
    return next(p for p in client.projects.list() if p.title == title)


def _tasks(client, project_id: int) -> list:
    return list(client.tasks.list(project=project_id, fields="all"))


def _label_as_person(client, title: str, answer, *, until, timeout: float = 120.0) -> list[int]:
    """Until ``until()`` is true: annotate every task of the project that has no annotation yet with
    ``answer(task_data)`` (a label name, or ``None`` = skip). Returns the task ids it annotated."""
    done: list[int] = []
    t0 = time.monotonic()
    while not until():
        assert time.monotonic() - t0 < timeout, "the oracle did not finish"
        projects = [p for p in client.projects.list() if p.title == title]
        for t in _tasks(client, projects[0].id) if projects else []:
            if not t.annotations:
                name = answer(t.data)
                client.annotations.create(t.id, result=_choice(name) if name else [], was_cancelled=name is None, lead_time=1.0)
                done.append(t.id)
        time.sleep(0.3)
    return done


def _in_thread(fn):
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised by the test
            out["error"] = e

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


def _result(th, out):
    th.join(60)
    if "error" in out:
        raise out["error"]
    return out["value"]


def _items(rows: list[dict]) -> Dataset:
    return Dataset.from_list([{"id": r["id"], "text": r["text"], "label": r.get("label", -1), "source": r.get("source", "real")} for r in rows])


ROWS = [
    {"id": "train-1", "text": "a gorgeous, witty, seductive movie .", "label": 1},
    {"id": "train-2", "text": "the plot is nothing but boilerplate clichés .", "label": 0},
    {"id": "syn-r1-0-aa", "text": "an utterly charming film that never drags .", "source": "synthetic"},
    {"id": "syn-r1-1-bb", "text": "tedious , overlong and badly acted .", "source": "synthetic"},
]
ANSWERS = {  # what the person answers; None = skip
    "a gorgeous, witty, seductive movie .": "positive",
    "the plot is nothing but boilerplate clichés .": "negative",
    "an utterly charming film that never drags .": "positive",
    "tedious , overlong and badly acted .": None,
    "a flat , lifeless remake .": "negative",
}


@pytest.mark.slow
def test_people_label_in_label_studio_and_a_killed_run_resumes(server, person, caplog):
    caplog.set_level(logging.INFO, logger="signal_hf.labelstudio")
    title = "sst2 team"
    os.environ["SIGNAL_HF_LS_TOKEN"] = TOKEN
    cfg = OracleConfig(synthetic="labelstudio", labelstudio_url=server, labelstudio_api_key_env="SIGNAL_HF_LS_TOKEN",
                       labelstudio_project=title, labelstudio_poll_interval=0.5, labelstudio_timeout=180)
    oracle = make_oracle("labelstudio", SST2, cfg)
    project = _project(person, title)
    assert _config_choices(project.label_config) == ["negative", "positive"]

    th, out = _in_thread(lambda: oracle.annotate(_items(ROWS)))
    _label_as_person(person, title, lambda d: ANSWERS[d["text"]], until=lambda: not th.is_alive())
    assert _result(th, out) == [1, 0, 1, None]
    tasks = _tasks(person, project.id)
    by_text = {t.data["text"]: t.data for t in tasks}
    assert len(tasks) == 4
    assert [by_text[r["text"]]["synthetic"] for r in ROWS] == [False, False, True, True]
    assert by_text[ROWS[2]["text"]]["origin"].startswith("Synthetic") and by_text[ROWS[0]["text"]]["origin"].startswith("Real")
    assert [by_text[r["text"]]["item_id"] for r in ROWS] == [r["id"] for r in ROWS]
    assert "label" not in by_text[ROWS[0]["text"]]  # the gold label is never shown
    assert any("4 of 4 annotated" in m for m in caplog.messages)

    # The run was killed after the labels came back; the restarted run asks for the same items plus
    # one new: only the new one is sent, the earlier answers (the skip too) are reused.
    again = make_oracle("labelstudio", SST2, cfg)
    assert again.project_id == project.id
    more = ROWS + [{"id": "train-9", "text": "a flat , lifeless remake ."}]
    th, out = _in_thread(lambda: again.annotate(_items(more)))
    annotated = _label_as_person(person, title, lambda d: ANSWERS[d["text"]], until=lambda: not th.is_alive())
    assert _result(th, out) == [1, 0, 1, None, 0]
    assert len(annotated) == 1 and len(_tasks(person, project.id)) == 5
    assert any("1 new task(s), 4 already there" in m for m in caplog.messages)
    assert TOKEN not in caplog.text


@pytest.mark.slow
def test_pair_items_duplicates_and_errors(server, person):
    os.environ["SIGNAL_HF_LS_TOKEN"] = TOKEN
    kw = dict(url=server, api_key_env="SIGNAL_HF_LS_TOKEN", poll_interval=0.5)
    oracle = LabelStudioOracle(QNLI, project="qnli team", timeout=120, **kw)
    items = Dataset.from_list([
        {"id": "q-1", "text": "Where is Paris?", "text_pair": "Paris is in France.", "label": 0, "source": "real"},
        {"id": "q-2", "text": "Where is Paris?", "text_pair": "Rome is in Italy.", "label": 1, "source": "real"},
        {"id": "q-3", "text": "Where is Paris?", "text_pair": "Paris is in France.", "label": 0, "source": "real"},  # same pair again
    ])
    th, out = _in_thread(lambda: oracle.annotate(items))
    answer = lambda d: "entailment" if "Paris" in d["text_pair"] else "not_entailment"  # noqa: E731
    _label_as_person(person, "qnli team", answer, until=lambda: not th.is_alive())
    assert _result(th, out) == [0, 1, 0]
    tasks = _tasks(person, oracle.project_id)
    assert sorted(t.data["text_pair"] for t in tasks) == ["Paris is in France.", "Rome is in Italy."]  # one task per pair

    # Nobody annotates: the wait ends with the resume hint; what was sent stays for the next run.
    lonely = LabelStudioOracle(SST2, project="nobody home", timeout=1.5, **kw)
    with pytest.raises(OracleError, match=r"1 of 1 item\(s\) not annotated after 1.5 s .*run again: nothing is sent twice"):
        lonely.annotate(_items(ROWS[:1]))
    assert len(_tasks(person, lonely.project_id)) == 1
    # A project of that title with other labels is refused; so is a wrong token.
    with pytest.raises(OracleError, match=r"project 'qnli team' labels \['entailment', 'not_entailment'\], the task \['negative', 'positive'\]"):
        LabelStudioOracle(SST2, project="qnli team", **kw)
    os.environ["SIGNAL_HF_LS_BAD"] = "not-the-token"
    with pytest.raises(OracleError, match=r"refused the API token \(HTTP 401\)"):
        LabelStudioOracle(SST2, url=server, api_key_env="SIGNAL_HF_LS_BAD")


@pytest.mark.slow
def test_pool_loop_with_people_labelling_the_real_items(server, person, tmp_path):
    """oracle.real: labelstudio in the real loop: the labeled set holds the person's answers (here the
    opposite of gold), and a skipped item is dropped."""
    from signal_hf.loop import run_experiment
    from signal_hf.store import LocalStore

    os.environ["SIGNAL_HF_LS_TOKEN"] = TOKEN
    cfg = config_from_dict({
        "name": "tiny-people",
        "data": {"dataset": "sst2", "pool_fraction": 0.0005, "max_test_samples": 32},  # |R| = 34
        "classifier": {"max_steps": 2, "max_length": 32, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 64},
        "acquisition": {"strategies": ["random"]},
        "loop": {"seeds": [0], "initial_fraction": 0.2, "step_fraction": 0.1, "max_fraction": 0.4},
        "oracle": {"real": "labelstudio", "labelstudio_url": server, "labelstudio_api_key_env": "SIGNAL_HF_LS_TOKEN",
                   "labelstudio_project": "sst2 pool", "labelstudio_poll_interval": 0.5, "labelstudio_timeout": 300},
        "output": {"output_dir": str(tmp_path / "run")},
    })
    skipped: list[str] = []

    def answer(data):
        if not skipped:
            skipped.append(data["item_id"])
            return None
        return "negative" if gold[data["item_id"]] == 1 else "positive"

    from signal_hf.data import load_task

    task = load_task(cfg.data)
    gold = dict(zip(task.train["id"][:], task.train["label"][:]))
    th, out = _in_thread(lambda: run_experiment(cfg, show_progress=False))
    annotated = _label_as_person(person, "sst2 pool", answer, until=lambda: not th.is_alive(), timeout=600)
    _result(th, out)
    store = LocalStore(tmp_path / "run" / "store")
    assert len(store.rounds("random-seed0")) >= 2  # round 0 and at least one round labelled by the person
    lab = store.load_round("random-seed0").datasets["labeled"]
    people = {i: y for i, y, r in zip(lab["id"][:], lab["label"][:], lab["round_acquired"][:]) if r > 0}
    initial = {i: y for i, y, r in zip(lab["id"][:], lab["label"][:], lab["round_acquired"][:]) if r == 0}
    assert people and len(annotated) == len(people) + 1 and skipped[0] not in people
    assert len(initial) == 7  # 20 % of |R| = 34
    assert all(y == 1 - gold[i] for i, y in people.items())  # the person's labels, not gold
    assert all(y == gold[i] for i, y in initial.items())  # the initial set keeps gold
