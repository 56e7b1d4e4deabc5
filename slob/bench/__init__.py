"""slob's benchmark: slob's two lanes vs IB's stock threading model vs ib_async on one fast fake TWS feed.

Run it with ``slob bench``, ``tools/bench`` or ``python -m slob.bench``. Layout:

* :mod:`slob.bench.feed` -- a minimal TWS for benchmarking, built on slob's wire codec and
  ``slob.testing.tws_messages``; one process per measurement, records per-tick send times.
* :mod:`slob.bench.clients` -- the clients (slob in both lanes, IB's stock model, ib_async, the
  hop floor), each run in a process of its own.
* :mod:`slob.bench.options` -- the options, shared by ``slob bench``, ``tools/bench`` and
  ``python -m slob.bench`` (``--quick`` resolves to a reduced set).
* :mod:`slob.bench.harness` -- orchestration: throughput, fixed rates in rounds, the feed-only,
  memory, burst, slow-consumer, busy-strategy and protocol-generation runs; the JSON file.
* :mod:`slob.bench.report` -- ratios, issue 18's keys and targets, the table, the plot and
  the Markdown page.

Every tick carries its sequence number (1..N) in the trade SIZE field. The feed writes the
``time.monotonic_ns()`` at which each tick was handed to the socket; the client writes the
``time.monotonic_ns()`` at which its user callback saw each tick. CLOCK_MONOTONIC is shared by
all processes on Linux, so latency = callback time - send time.
"""
