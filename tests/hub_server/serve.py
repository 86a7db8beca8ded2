"""Run the Hub-compatible test server: ``python tests/hub_server/serve.py --root DIR --port N``.

The token is read from the ``HUB_TEST_SERVER_TOKEN`` environment variable (never argv, which
``ps`` shows). Binds 127.0.0.1 only. Exits by itself when the process that started it dies, so
a killed test run never leaves it behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

# tests/ on the path, so the package imports as ``hub_server`` (no tests/__init__.py needed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args()
    token = os.environ.get("HUB_TEST_SERVER_TOKEN")
    if not token:
        sys.exit("HUB_TEST_SERVER_TOKEN is not set")

    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    import uvicorn

    from hub_server.app import build_app

    uvicorn.run(
        build_app(args.root, token),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
