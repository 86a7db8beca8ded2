"""Test helper: run the ``signal-hf`` CLI and SIGKILL the process at a chosen point of a round.

    python tests/kill_points.py PHASE:ROUND [signal-hf arguments ...]

The kill points are installed by wrapping the real functions of this process (nothing in
``signal_hf`` knows about them), then the real CLI runs. The process kills itself with SIGKILL,
the signal a crash, the OOM killer or a pre-empted node delivers: no cleanup, no atexit, no flush.

PHASE (ROUND is the active-learning round it applies to):

* ``generate``: the generator's sampling of round ROUND has returned; the new candidates exist
  only in memory.
* ``train``: after the 2nd optimizer step of the classifier training of round ROUND.
* ``rl``: after the 1st RL (TRL trainer) step of round ROUND.
* ``store``: inside the local store's write of round ROUND, after the first parquet file of the
  round's temporary folder has been written.
* ``saved``: round ROUND is saved to the store but its ``results.jsonl`` row is not written yet.
* ``push``: (HubStore) round ROUND's adapter is committed to the model repo, its dataset commit
  has not started.
* ``after``: ROUND is a number of seconds (``after:7.5``): killed by a timer wherever the run is
  then - a random point.

If the run ends without reaching the kill point the helper exits with status 3, so a test can
tell a kill that happened (return code -9) from a kill point that was never reached.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

PHASES = ("generate", "train", "rl", "store", "saved", "push", "after")
NOT_REACHED = 3


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(phase: str, round_idx: int) -> None:
    """Wrap the real functions so that the process SIGKILLs itself at ``phase`` of ``round_idx``."""
    import transformers

    from signal_hf.loop import stages
    from signal_hf.store import dataset_io as store_dataset_io
    from signal_hf.store import hub as store_hub

    now = {"phase": None, "round": None, "count": 0}

    def enter(name: str, r: int) -> None:
        now.update(phase=name, round=r, count=0)

    def here(name: str) -> bool:
        return now["phase"] == name and now["round"] == round_idx

    def track(name: str, stage: str) -> None:
        original = getattr(stages, stage)

        def wrapper(ctx, state, *args, **kwargs):  # every stage takes (context, round state, ...)
            outer = dict(now)
            enter(name, state.round)
            try:
                return original(ctx, state, *args, **kwargs)
            finally:
                now.update(outer)

        setattr(stages, stage, wrapper)

    track("train", "retrain")
    track("rl", "self_inform")
    track("generate", "generate")
    track("store", "save")

    if phase in ("train", "rl"):
        original_step = transformers.Trainer.training_step

        def training_step(self, *args, **kwargs):
            out = original_step(self, *args, **kwargs)
            if here(phase):
                now["count"] += 1
                if now["count"] >= (2 if phase == "train" else 1):
                    _die()
            return out

        transformers.Trainer.training_step = training_step
    elif phase == "generate":
        from signal_hf.generation import Generator

        original_sample = Generator.sample

        def sample(self, *args, **kwargs):
            out = original_sample(self, *args, **kwargs)
            if here("generate"):
                _die()
            return out

        Generator.sample = sample
    elif phase == "store":
        original_write = store_dataset_io.write_dataset_parquet

        def write_dataset_parquet(ds, path: Path) -> None:
            original_write(ds, path)
            if here("store"):
                assert Path(path).parent.parent.name.startswith(".tmp-"), path  # really mid-write
                _die()

        store_dataset_io.write_dataset_parquet = write_dataset_parquet
    elif phase == "saved":
        original_save = stages.save  # already the tracking wrapper

        def save(ctx, state, *args, **kwargs):
            out = original_save(ctx, state, *args, **kwargs)
            if state.round == round_idx:
                _die()
            return out

        stages.save = save
    elif phase == "push":
        original_commit = store_hub.HubStore._commit_files

        def commit_files(self, repo_id, repo_type, branch, files, message):
            if repo_type == "dataset" and branch.endswith(f"-round-{round_idx}"):
                _die()
            return original_commit(self, repo_id, repo_type, branch, files, message)

        store_hub.HubStore._commit_files = commit_files
    else:
        raise SystemExit(f"unknown kill phase {phase!r}; use one of {', '.join(PHASES)}")


def main(argv: list[str]) -> int:
    if not argv or ":" not in argv[0]:
        raise SystemExit("usage: kill_points.py PHASE:ROUND [signal-hf arguments ...]")
    phase, _, r = argv[0].partition(":")
    if phase == "after":
        import threading

        timer = threading.Timer(float(r), _die)
        timer.daemon = True  # a run that ends first exits normally
        timer.start()
    else:
        install(phase, int(r))
    from signal_hf.cli import main as cli_main

    rc = cli_main(argv[1:])
    print(f"kill point {argv[0]} was never reached (signal-hf exited with {rc})", file=sys.stderr)
    return NOT_REACHED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
