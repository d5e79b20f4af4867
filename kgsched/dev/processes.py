"""Stopping the processes the harness starts (servers, runners): politely, then for sure."""

from __future__ import annotations

import signal
import subprocess


def stop_process(process: subprocess.Popen | None, timeout: float = 20, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` (SIGTERM: finish what you are doing) to a running process, wait ``timeout`` seconds,
    then kill it; returns once it has exited. Nothing to do for None or a process that already ended."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
