"""Pure pieces of order execution: a bracket's intent, and the reconciliation of intents
with what TWS reports (decision table and store-vs-TWS differences).

Nothing here does I/O or reads a clock: the OrderExecutor (:mod:`slob.execution.order_executor`)
gathers the inputs, applies the decisions and writes the results. Imports go down only:
:mod:`slob.model`, :mod:`slob.orders`, :mod:`slob.ib.errors`.
"""

from __future__ import annotations
