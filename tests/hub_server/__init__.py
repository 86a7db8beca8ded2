"""Hub-compatible test server (olah for reads + a git-backed write API) and its process manager.

``HubTestServer`` starts ``serve.py`` as a child process bound to 127.0.0.1, waits until it
answers, and stops it (terminate, then kill after a bounded wait). The repositories live under
``root``, so a stopped server restarted on the same root and port serves the same repos.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SERVE = Path(__file__).with_name("serve.py")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HubTestServer:
    """One server process on ``http://127.0.0.1:<port>`` serving the repos under ``root``."""

    def __init__(self, root: Path, token: str, port: int | None = None, log_path: Path | None = None):
        self.root = Path(root)
        self.token = token
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else self.root / "server.log"
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 60.0) -> None:
        if self.running:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
        env["HUB_TEST_SERVER_TOKEN"] = self.token
        log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [sys.executable, str(SERVE), "--root", str(self.root), "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"hub test server exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                req = urllib.request.Request(
                    f"{self.url}/api/whoami-v2", headers={"authorization": f"Bearer {self.token}"}
                )
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"hub test server did not answer within {timeout_s}s")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=timeout_s)
        self._proc = None


def run_child_cases(cases_file: Path, base: Path, timeout_s: int) -> tuple[dict[str, tuple[str, str]], str, str]:
    """Run ``cases_file`` in a child pytest whose environment points the HF clients at a fresh test
    server (they read HF_ENDPOINT / HF_TOKEN / HF_HOME once, at import, so a child process is the only
    reliable way in a whole-suite run). The child starts and stops the server itself.

    Returns ({case name: (outcome, detail)}, the child's output, the token it used).
    """
    import secrets
    import xml.etree.ElementTree as ET

    token = "hf_" + secrets.token_hex(16)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "PYTEST_"))}
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
        f"--junitxml={junit}", str(cases_file),
    ]
    try:
        proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=timeout_s)
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        output = f"child pytest timed out after {timeout_s}s\n{exc.stdout or ''}{exc.stderr or ''}"
    results: dict[str, tuple[str, str]] = {}
    if junit.is_file():
        for case in ET.parse(junit).getroot().iter("testcase"):
            outcome, detail = "passed", ""
            for child in case:
                if child.tag in ("failure", "error", "skipped"):
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                    detail = (child.get("message") or "") + "\n" + (child.text or "")
                    break
            results[case.get("name")] = (outcome, detail)
    return results, output, token


def env_server(token: str):
    """Generator for a module-scoped pytest fixture in a hub child process: the test server configured by
    HUB_TEST_SERVER_ROOT / HUB_TEST_SERVER_PORT (set by :func:`run_child_cases`), started and stopped."""
    srv = HubTestServer(Path(os.environ["HUB_TEST_SERVER_ROOT"]), token=token, port=int(os.environ["HUB_TEST_SERVER_PORT"]))
    srv.start()
    yield srv
    srv.stop()
