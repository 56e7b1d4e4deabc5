"""The pure cores of the commands: one command = one shell in :mod:`slob.commands`
(arguments in, text out) + one core here (the work, callable from Python and tests).

``report`` (the validation report: numbers from the store), ``checkpoint`` (the day's
verdict), ``demo`` (the whole chain against FakeTWS), ``contracts`` (what TWS says a
symbol is), ``history`` (the resumable download of IB's bars). May import every room
below it, including :mod:`slob.testing` (the demo runs on FakeTWS); never
:mod:`slob.commands`, :mod:`slob.research`, :mod:`slob.soak` or :mod:`slob.bench`. See
docs/architecture.md.
"""
