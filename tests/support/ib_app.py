"""IB's own client used the plain documented way (EClient + EWrapper, EReader thread,
``run()`` on a thread of its own), recording every callback for assertions."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.wrapper import EWrapper

FARM_CODES = range(2100, 2200)


class RecordingApp(EWrapper, EClient):  # type: ignore[misc]
    """Records ``(callback name, args)`` for every EWrapper callback it receives."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._changed = threading.Condition()
        self._runner: threading.Thread | None = None
        self._stopping = False

    # Every EWrapper callback funnels into _record (set up below the class).
    def _record(self, name: str, args: tuple[Any, ...]) -> None:
        with self._changed:
            self.events.append((name, args))
            self._changed.notify_all()

    def start(self, port: int, client_id: int = 1, timeout: float = 10.0) -> "RecordingApp":
        self.connect("127.0.0.1", port, client_id)
        self._runner = threading.Thread(target=self._run, name=f"ibapi-run-{client_id}", daemon=True)
        self._runner.start()
        self.wait_for("nextValidId", timeout=timeout)
        return self

    def _run(self) -> None:
        try:
            self.run()
        except TypeError:
            # IB's own race: disconnect() from another thread resets serverVersion_ to
            # None while run() still drains queued messages and compares it with 201.
            # Only expected while stopping; anything else is a real failure.
            if not self._stopping:
                raise

    def stop(self) -> None:
        self._stopping = True
        self.disconnect()
        if self._runner is not None:
            self._runner.join(5)
            assert not self._runner.is_alive(), "ibapi run() thread did not stop"
            self._runner = None

    def named(self, name: str) -> list[tuple[Any, ...]]:
        with self._changed:
            return [args for n, args in self.events if n == name]

    def errors(self, *, farm: bool = False) -> list[tuple[int, int, str]]:
        """(reqId, code, text) of error callbacks, without farm notices unless asked."""
        return [(a[0], a[2], a[3]) for a in self.named("error") if farm or a[2] not in FARM_CODES]

    def wait_for(self, name: str, count: int = 1, *, timeout: float = 10.0,
                 where: Callable[[tuple[Any, ...]], bool] | None = None) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [a for n, a in self.events if n == name and (where is None or where(a))]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({n for n, _ in self.events})
                    raise TimeoutError(f"waited {timeout} s for {count} x {name}; got {len(found)}; seen {seen}")
                self._changed.wait(min(left, 0.25))

    def wait_error(self, code: int, *, timeout: float = 10.0) -> tuple[Any, ...]:
        return self.wait_for("error", timeout=timeout, where=lambda a: a[2] == code)[0]


def _make_recorder(name: str) -> Callable[..., None]:
    def callback(self: RecordingApp, *args: Any) -> None:
        self._record(name, args)
    callback.__name__ = name
    return callback


for _name in dir(EWrapper):
    if not _name.startswith("_") and callable(getattr(EWrapper, _name)) and _name not in ("logAnswer",):
        setattr(RecordingApp, _name, _make_recorder(_name))


def future(symbol: str = "NQ", **fields: Any) -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = symbol, "FUT", "CME", "USD"
    for key, value in fields.items():
        setattr(c, key, value)
    return c
