"""A SIGnAL run with a Hub round store, killed, resumed (from its folder and from the repo id) and
pulled by revision: tests/hub_server/resume_cases.py, run in one child pytest process whose
environment points the HF clients at a Hub-compatible test server on 127.0.0.1 (they read
HF_ENDPOINT / HF_TOKEN / HF_HOME once, at import; see tests/test_store_hub.py for the why).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_server import run_child_cases

pytestmark = [pytest.mark.hub, pytest.mark.generator, pytest.mark.slow]

CASES_FILE = Path(__file__).parent / "hub_server" / "resume_cases.py"
CHILD_TIMEOUT_S = 840  # under pytest-timeout (900 s in pyproject), so a hang reports its output


def test_hub_run_killed_resumed_and_pulled(tmp_path):
    results, output, token = run_child_cases(CASES_FILE, tmp_path, CHILD_TIMEOUT_S)
    assert token not in output, "the Hub token was printed"
    assert len(results) == 1, f"the hub resume case did not run:\n{output[-6000:]}"
    ((outcome, detail),) = results.values()
    assert outcome == "passed", detail[-6000:]
