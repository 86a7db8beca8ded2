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
from pathlib import Path

import pytest
from hub_server import run_child_cases

pytestmark = pytest.mark.hub

CASES_FILE = Path(__file__).parent / "hub_server" / "hub_cases.py"
CHILD_TIMEOUT_S = 300
CASES = [
    node.name
    for node in ast.parse(CASES_FILE.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
]


@pytest.fixture(scope="module")
def hub_results(tmp_path_factory) -> dict[str, tuple[str, str]]:
    results, output, token = run_child_cases(CASES_FILE, tmp_path_factory.mktemp("hub"), CHILD_TIMEOUT_S)
    if not results:
        pytest.fail(f"hub cases did not run:\n{output[-6000:]}")
    assert token not in output, "the Hub token was printed by the hub tests"
    return results


@pytest.mark.parametrize("case", CASES)
def test_hub(case: str, hub_results: dict[str, tuple[str, str]]):
    assert case in hub_results, f"{case} did not run in the hub child process"
    outcome, detail = hub_results[case]
    assert outcome == "passed", f"{case} {outcome}:\n{detail[-6000:]}"
