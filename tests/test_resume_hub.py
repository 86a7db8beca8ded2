"""A SIGnAL run with a Hub round store, killed, resumed (from its folder and from the repo id) and
pulled by revision: tests/hub_server/resume_cases.py, run in one child pytest process whose
environment points the HF clients at a Hub-compatible test server on 127.0.0.1 (they read
HF_ENDPOINT / HF_TOKEN / HF_HOME once, at import; see tests/test_store_hub.py for the why).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hub_server import free_port

pytestmark = [pytest.mark.hub, pytest.mark.generator, pytest.mark.slow]

CASES_FILE = Path(__file__).parent / "hub_server" / "resume_cases.py"
REPO_ROOT = Path(__file__).resolve().parents[1]
CHILD_TIMEOUT_S = 840  # under pytest-timeout (900 s in pyproject), so a hang reports its output


def test_hub_run_killed_resumed_and_pulled(tmp_path):
    token = "hf_" + secrets.token_hex(16)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "PYTEST_"))}
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{port}",
        HF_TOKEN=token,
        HF_HOME=str(tmp_path / "hf_home"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_ETAG_TIMEOUT="10",
        HF_HUB_DOWNLOAD_TIMEOUT="30",
        HUB_TEST_SERVER_ROOT=str(tmp_path / "server"),
        HUB_TEST_SERVER_PORT=str(port),
        SIGNAL_HF_HUB_CHILD="1",
    )
    junit = tmp_path / "junit.xml"
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "child"),
        f"--junitxml={junit}", str(CASES_FILE),
    ]
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hub resume case timed out after {CHILD_TIMEOUT_S}s\n{exc.stdout or ''}{exc.stderr or ''}"[-6000:])
    assert token not in output, "the Hub token was printed"
    assert junit.is_file(), f"the hub resume case did not run:\n{output[-6000:]}"
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == 1, output[-6000:]
    problems = [f"{c.tag}: {c.get('message')}\n{c.text}" for c in cases[0] if c.tag in ("failure", "error", "skipped")]
    assert not problems, problems[0][-6000:]
