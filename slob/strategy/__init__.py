"""The 5/1 SLOB strategy: the setup tracker (one transition table: where a setup changes
state) and setup planting (scripted setups for demos and tests).

Pure: candles in, setup events out; no I/O, no clock of its own. May import
:mod:`slob.market`, :mod:`slob.config`, :mod:`slob.model` and :mod:`slob.ib` (errors);
see docs/architecture.md.
"""
