"""HubStore against a Hub-compatible server on 127.0.0.1, through the real HF clients.

huggingface_hub, datasets and peft read HF_ENDPOINT / HF_TOKEN / HF_HOME / HF_HUB_DISABLE_XET
once, when huggingface_hub is first imported - and in a whole-suite run some other test module
has imported it long before this one. So the hub cases (tests/hub_server/hub_cases.py) run in
ONE child pytest process per session whose environment is set before anything is imported; the
child starts the test server (olah + our git write API) on the loopback port chosen here and
stops it when it ends. Each case below reports the outcome of the same-named child test.
"""

from __future__ import annotations

import ast
import os
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hub_server import free_port

pytestmark = pytest.mark.hub

CASES_FILE = Path(__file__).parent / "hub_server" / "hub_cases.py"
REPO_ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S = 300
CASES = [
    node.name
    for node in ast.parse(CASES_FILE.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
]


@pytest.fixture(scope="module")
def hub_results(tmp_path_factory) -> dict[str, tuple[str, str]]:
    base = tmp_path_factory.mktemp("hub")
    token = "hf_" + secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "PYTEST_"))}
    port = free_port()
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{port}",
        HF_TOKEN=token,
        HF_HOME=str(base / "hf_home"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_ETAG_TIMEOUT="10",
        HF_HUB_DOWNLOAD_TIMEOUT="30",
        HUB_TEST_SERVER_ROOT=str(base / "server"),
        HUB_TEST_SERVER_PORT=str(port),
        # Lets tests/conftest.py tell the hub child apart (it must not force HF_HUB_OFFLINE there).
        SIGNAL_HF_HUB_CHILD="1",
    )
    junit = base / "junit.xml"
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(base / "child"),
        f"--junitxml={junit}", str(CASES_FILE),
    ]
    try:
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S
        )
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        output = f"child pytest timed out after {CHILD_TIMEOUT_S}s\n{exc.stdout or ''}{exc.stderr or ''}"
    if not junit.is_file():
        pytest.fail(f"hub cases did not run:\n{output[-6000:]}")
    results: dict[str, tuple[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                detail = (child.get("message") or "") + "\n" + (child.text or "")
                break
        results[case.get("name")] = (outcome, detail)
    assert token not in output, "the Hub token was printed by the hub tests"
    return results


@pytest.mark.parametrize("case", CASES)
def test_hub(case: str, hub_results: dict[str, tuple[str, str]]):
    assert case in hub_results, f"{case} did not run in the hub child process"
    outcome, detail = hub_results[case]
    assert outcome == "passed", f"{case} {outcome}:\n{detail[-6000:]}"
