"""The engine's child process as the soak's runner sees it: start, watch, sync, kill.

One :class:`Child` per process life. Its stdout carries the JSON lines of
:mod:`slob.soak.child` (read on a thread of its own into :attr:`Child.events`); stderr
goes to a log file the report points at. Nothing here decides anything: the runner
does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import slob

__all__ = ["Child", "rss_kb"]


def rss_kb(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB (Linux /proc), None where unavailable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class Child:
    """``python -m slob.soak.child ARGS`` with its events; see the module docstring."""

    def __init__(self, number: int, args: Sequence[str], log_path: Path) -> None:
        self.number = number
        self.log_path = log_path
        self.events: list[dict[str, Any]] = []
        self.expected_exit = ""  # why the soak ended it ("killed", "stopped"), "" if not
        self.started_ns = time.monotonic_ns()
        self.ended_ns: int | None = None
        self.rss_start_kb: int | None = None
        self.rss_end_kb: int | None = None
        self._changed = threading.Condition()
        env = dict(os.environ)
        root = str(Path(slob.__file__).resolve().parents[1])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._log: TextIO = open(log_path, "a", encoding="utf-8")
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "slob.soak.child", *args], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1, env=env)
        except BaseException:
            self._log.close()
            raise
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, name=f"slob-soak-child-{number}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "output", "text": line.rstrip()}
            event["parent_ns"] = time.monotonic_ns()
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    # -- watching --------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_event(self, name: str, *, after: int = 0, timeout: float) -> dict[str, Any] | None:
        """The first event called ``name`` at index >= ``after``; None after ``timeout``
        seconds or once the process has ended without it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events[after:]:
                    if event.get("event") == name:
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or (not self.alive and not self._reader.is_alive()):
                    return None
                self._changed.wait(min(left, 0.1))

    def named(self, name: str) -> list[dict[str, Any]]:
        with self._changed:
            return [e for e in self.events if e.get("event") == name]

    # -- acting ----------------------------------------------------------------------

    def send(self, line: str) -> bool:
        stdin = self.proc.stdin
        if stdin is None or not self.alive:
            return False
        try:
            stdin.write(line + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def kill(self, why: str = "killed") -> None:
        """SIGKILL, as the soak's ``kill -9`` fault (or a last resort)."""
        self.expected_exit = self.expected_exit or why
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the engine stops cleanly) and wait; SIGKILL after ``timeout``."""
        self.expected_exit = self.expected_exit or "stopped"
        if self.alive:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill("stopped")
            return self.proc.wait(10)

    def reap(self) -> int | None:
        """After the process ended: note when, close pipes and files, join the reader."""
        code = self.proc.poll()
        if code is None:
            return None
        if self.ended_ns is None:
            self.ended_ns = time.monotonic_ns()
        for pipe in (self.proc.stdin,):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        return code

    def log_tail(self, lines: int = 12) -> list[str]:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]
