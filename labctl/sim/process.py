"""A daemon the simulated lab started, stopped by its pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ManagedProcess:
    pid: int
    process: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        # A zombie is dead: it only waits for its parent (often PID 1, which may reap
        # orphans late) to collect it, and kill(pid, 0) still succeeds on it.
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; reaped when we started it."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()


def stop_all(processes: list[ManagedProcess], timeout: float = 3.0) -> None:
    """Stop many at once: SIGTERM to all, one shared deadline, then SIGKILL what is left."""
    for p in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(p.running() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.02)
    for p in processes:
        if p.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(p.running() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.02)
