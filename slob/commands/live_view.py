"""The live status display `slob demo` and `slob run` share.

On a terminal: a rich panel of figures that updates in place (4 times a second), with the
event lines scrolling above it. Otherwise (a pipe, a file, a service's journal): the event
lines as they happen and one status line every ``every`` seconds, so a log shows the state
at regular times. The figures come from ``fields()``, called on the display's own thread:
it must return a finished list (the commands compute it on their own loop and hand over
the last one), or None while there is nothing to show yet.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, TextIO

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["Fields", "LinesView", "PanelView", "Rate", "StatusView", "console", "open_view", "status_line"]

#: (label, value) pairs, shown two to a row in the panel and joined on one status line.
Fields = list[tuple[str, str]]


class Rate:
    """Events per real second over about the last second, from a running count."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def __call__(self, count: int) -> float:
        now = self._clock()
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[1][0] >= 1.0:
            self._samples.popleft()
        then, before = self._samples[0]
        return (count - before) / (now - then) if now - then > 0.05 else 0.0


def console(**options: Any) -> Console:
    """A rich Console whose closed pipe (``| head``) raises BrokenPipeError, which the
    command line turns into its quiet exit 141 -- rich's own handling exits 1."""
    from rich.console import Console

    class _PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _PipeConsole(**options)


def status_line(fields: Fields) -> str:
    return "  ".join(f"{label} {value}" for label, value in fields)


class StatusView:
    """``say`` prints an event line; entering starts the status display, leaving stops it."""

    def __init__(self, out: TextIO, console: Console, title: Callable[[], str],
                 fields: Callable[[], Fields | None]) -> None:
        self.out, self.console, self.title, self.fields = out, console, title, fields

    def say(self, line: str) -> None:
        raise NotImplementedError

    def __enter__(self) -> StatusView:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class PanelView(StatusView):
    """A rich Live panel; event lines print above it. ``waiting`` shows until the first figures."""

    def __init__(self, out: TextIO, title: Callable[[], str], fields: Callable[[], Fields | None],
                 waiting: str = "connecting...") -> None:
        from rich.live import Live

        super().__init__(out, console(file=out), title, fields)
        self.waiting = waiting
        self.live = Live(console=self.console, get_renderable=self._render, refresh_per_second=4,
                         transient=True, redirect_stdout=False, redirect_stderr=False)

    def say(self, line: str) -> None:
        from rich.text import Text

        self.console.print(Text(line), soft_wrap=True)

    def __enter__(self) -> PanelView:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def _render(self) -> RenderableType:
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        fields = self.fields()
        if fields is None:
            return self.waiting
        grid = Table.grid(padding=(0, 2))
        for _ in range(4):
            grid.add_column()
        pairs = fields + [("", "")] * (len(fields) % 2)
        for left, right in zip(pairs[::2], pairs[1::2]):
            grid.add_row(Text(left[0], style="bold"), Text(left[1]), Text(right[0], style="bold"), Text(right[1]))
        return Panel(grid, title=self.title(), title_align="left", expand=False)


class LinesView(StatusView):
    """Event lines as they happen and a status line every ``every`` seconds (a thread of
    its own; ``every`` 0: no status lines)."""

    def __init__(self, out: TextIO, title: Callable[[], str], fields: Callable[[], Fields | None],
                 every: float, *, prefix: str = "") -> None:
        super().__init__(out, console(file=out, force_terminal=False, width=100), title, fields)
        self.every, self.prefix = every, prefix
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="slob-status-lines", daemon=True)

    def say(self, line: str) -> None:
        with self._lock:
            print(line, file=self.out, flush=True)

    def status(self) -> None:
        """Print the status line now (if there are figures)."""
        fields = self.fields()
        if fields is not None:
            self.say(self.prefix + status_line(fields))

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.status()
            except (BrokenPipeError, ValueError):  # the output went away: the command reports it
                return

    def __enter__(self) -> LinesView:
        if self.every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def open_view(out: TextIO, *, title: Callable[[], str], fields: Callable[[], Fields | None], every: float,
              waiting: str = "connecting...", prefix: str = "") -> StatusView:
    """A :class:`PanelView` when ``out`` is a terminal, else a :class:`LinesView`."""
    isatty = getattr(out, "isatty", None)
    if callable(isatty) and isatty():
        return PanelView(out, title, fields, waiting)
    return LinesView(out, title, fields, every, prefix=prefix)
