"""Measuring tools shared by the benchmark sections: wall time, peak memory, thread caps, machine info.

Peak memory is the increase of the process's peak resident set size (``VmHWM``) over the resident
size just before the call: the peak is reset through ``/proc/self/clear_refs`` before each measured
call, so numpy, scikit-learn and torch allocations are all counted the same way. On glibc the mmap
threshold is fixed at 64 KiB (:func:`fix_malloc_threshold`) so that freed large blocks go back to the
OS and a later call cannot hide its allocations in memory an earlier one left in the heap.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "Measurement",
    "PeakRSS",
    "measure",
    "set_threads",
    "fix_malloc_threshold",
    "machine_info",
    "write_json",
    "fmt_s",
    "fmt_mb",
    "fmt_ratio",
]

_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_thread_limits: Any = None  # keeps the threadpoolctl limit alive for the whole process


def fix_malloc_threshold(threshold: int = 64 * 1024) -> bool:
    """glibc only: allocate blocks ≥ ``threshold`` bytes with mmap (returned to the OS on free) and
    stop glibc raising the threshold dynamically, so peak-RSS deltas are not hidden by reused heap.
    Returns whether it took effect."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_mmap_threshold = -3
    return bool(libc.mallopt(m_mmap_threshold, int(threshold)))


def set_threads(n: int | None = None) -> int:
    """Cap torch intra-op threads and the BLAS/OpenMP pools numpy, scipy and scikit-learn use to
    the same ``n`` (default: ``SIGNAL_HF_NUM_THREADS``, else every core this process may use), so
    ours and small-text run with the same parallelism. Returns ``n``."""
    global _thread_limits
    import torch

    if n is None:
        n = int(os.environ.get("SIGNAL_HF_NUM_THREADS") or len(os.sched_getaffinity(0)))
    n = max(1, int(n))
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn (and so small-text) brings threadpoolctl
        pass
    else:
        _thread_limits = threadpool_limits(limits=n)
    return n


def _status_kb(field: str) -> int | None:
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")  # "5" resets VmHWM to the current RSS (Linux ≥ 4.0)
        return True
    except OSError:
        return False


class PeakRSS:
    """Context manager: ``peak_bytes`` = peak RSS during the block minus RSS at its start, or None
    where ``/proc/self/clear_refs`` is not available (not Linux)."""

    def __init__(self) -> None:
        self.peak_bytes: int | None = None
        self._base: int | None = None

    def __enter__(self) -> "PeakRSS":
        gc.collect()
        ok = _reset_peak()
        self._base = _status_kb("VmRSS") if ok else None
        return self

    def __exit__(self, *exc: Any) -> None:
        hwm = _status_kb("VmHWM")
        if self._base is not None and hwm is not None:
            self.peak_bytes = max(0, hwm - self._base) * 1024


@dataclass
class Measurement:
    """One measured call: its return value, wall seconds, process CPU seconds (all threads) and
    peak RSS increase (bytes or None)."""

    result: Any
    seconds: float
    cpu_seconds: float
    peak_bytes: int | None


def measure(fn: Callable[[], Any], *, memory: bool = True) -> Measurement:
    """Run ``fn()`` once under a wall clock (``time.perf_counter``), the process CPU clock and, if
    ``memory``, :class:`PeakRSS`."""
    if memory:
        with PeakRSS() as mem:
            c, t = time.process_time(), time.perf_counter()
            out = fn()
            dt, dc = time.perf_counter() - t, time.process_time() - c
        return Measurement(out, dt, dc, mem.peak_bytes)
    gc.collect()
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    return Measurement(out, time.perf_counter() - t, time.process_time() - c, None)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit(root: Path) -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_info(threads: int) -> dict[str, Any]:
    """What a result depends on: CPU, cores, memory, load, thread cap, GPU, package versions, commit."""
    import torch

    mem_kb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    dists = ["signal_hf", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "numpy", "scipy",
             "scikit-learn", "small-text", "faiss-cpu", "vllm"]
    return {
        "cpu": _cpu_model(),
        "cores_available": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kb / 2**20, 1) if mem_kb else None,
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "threads": threads,
        "cuda": torch.cuda.is_available(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": {d: _version(d) for d in dists},
        "git_commit": _git_commit(Path(__file__).resolve().parents[1]),
        "peak_memory_method": "peak RSS increase: VmHWM (reset via /proc/self/clear_refs) minus VmRSS before the call",
    }


def write_json(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (atomically: temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    tmp.replace(path)
    return path


def fmt_s(seconds: float | None) -> str:
    """Seconds with a unit that keeps 3 significant digits readable (µs/ms/s)."""
    if seconds is None:
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_mb(n_bytes: int | None) -> str:
    return "—" if n_bytes is None else f"{n_bytes / 2**20:.0f} MiB"


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}×"
