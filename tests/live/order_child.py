"""Test helper, run as a child process: an OrderExecutor with a store file against a
FakeTWS in the test process. It places one bracket and kills itself with SIGKILL at the
step it is given -- that is the test's fault, not slob's code:

* ``intent``: the intent is committed, no leg sent yet;
* ``leg1`` / ``leg2`` / ``leg3``: TWS has processed that many legs (a round trip after the
  leg proves it);
* ``fill``: the entry's execution is stored, its commission report has just arrived and
  is not handled;
* ``none``: no kill. It reconciles (start), tries the same setup again, prints what it
  found as one JSON line and stops cleanly.

Usage: python order_child.py PORT DB STEP
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

from slob.config.ib_config import IBConfig
from slob.live import IBWSFetcher
from slob.execution.order_executor import OrderExecutor, TradePlan
from slob.strategy.setup_tracker import Direction
from slob.store.store import Store
from slob.orders import CommissionReported

PLAN = TradePlan("NQ-20241202-short-1532-1", "NQ", Direction.SHORT, 21010.0, 20990.0, None)


def say(*words: object) -> None:
    print(*words, flush=True)


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


async def main(port: int, db: str, step: str) -> None:
    fetcher = IBWSFetcher(config=IBConfig(port=port, client_id=1, reconnect_delay_seconds=0.05))
    store = Store(db)
    executor = OrderExecutor(fetcher, store=store)

    async def on_order(record: object) -> None:
        if step == "fill" and isinstance(record, CommissionReported):
            await store.aflush()  # the execution is stored; its commission never will be here
            die()
        await executor.on_order(record)

    fetcher.on_order = on_order
    await fetcher.connect()
    await fetcher.subscribe(["NQ"])
    listener = asyncio.create_task(fetcher.listen())
    await executor.start()
    real = fetcher.place_order
    sent = 0

    async def place_order(order_id: int, contract: Any, order: Any) -> None:
        nonlocal sent
        if step == "intent":
            die()
        await real(order_id, contract, order)
        sent += 1
        if step == f"leg{sent}":
            await fetcher.server_time()  # TWS has processed this leg
            die()

    setattr(fetcher, "place_order", place_order)
    result = await executor.place(PLAN)
    say("placed", type(result).__name__)
    if step == "fill":
        await asyncio.Event().wait()  # the test advances the clock; the commission kills us
    say(json.dumps({
        "differences": [str(d) for d in executor.store_differences],
        "verdict": executor.verdicts[PLAN.setup_id].state if PLAN.setup_id in executor.verdicts else None,
        "position": executor.position,
    }))
    await fetcher.disconnect()
    await asyncio.gather(listener, return_exceptions=True)
    store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
