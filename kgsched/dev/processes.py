"""Starting and stopping the processes the harness starts (servers, runners): waiting until a server
answers, stopping politely, then for sure."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable

from kgsched.errors import StoreError


def wait_until_ready(process: subprocess.Popen, ready: Callable[[], bool], *, what: str, timeout: float,
                     output: Callable[[], str], stop: Callable[[], None], pause: float = 0.05,
                     error: type[Exception] = StoreError) -> None:
    """Return once ``ready()`` says the server answers. If the process exits first, or ``timeout``
    seconds pass, call ``stop`` and raise ``error`` saying so (with ``output()``, read before ``stop``
    cleans up, when it exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = output()
            stop()
            raise error(f"{what} exited: {said}")
        if ready():
            return
        time.sleep(pause)
    stop()
    raise error(f"{what} did not become ready in {timeout:.0f} s")


def stderr_head(process: subprocess.Popen[bytes] | None) -> str:
    """The start of what an exited server wrote to its standard error (a pipe)."""
    if process is None or process.stderr is None:
        return ""
    return process.stderr.read().decode(errors="replace")[:500]


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a GET of ``url`` succeeds (the body is read and dropped)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
        return True
    except OSError:
        return False


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
