"""The SQLite store: candles, setups, orders and fills of a run, written by one writer.

``store`` (the :class:`~slob.store.store.Store`: where the store writes), ``records`` (the
frozen rows) and ``schema`` (tables and migrations). May import :mod:`slob.model` and
:mod:`slob.ib` (errors) only; see docs/architecture.md.
"""
