"""`slob soak`: days of unattended operation, compressed, with faults at random moments.

The full engine runs in a child process through IB's client against FakeTWS, on a seeded
market with planted SLOB setups, through IB's calendar (restarts, resets, halts) and
seeded random faults; the parent kills and restarts it, then checks the invariants. The
pure parts -- :mod:`~slob.soak.calendar`, :mod:`~slob.soak.faults`,
:mod:`~slob.soak.market`, :mod:`~slob.soak.checks` -- are apart from the process and I/O
parts (:mod:`~slob.soak.runner`, :mod:`~slob.soak.child`). See docs/soak.md.
"""
