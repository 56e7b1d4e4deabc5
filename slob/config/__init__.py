"""Configuration records (frozen, validated at construction): ``IBConfig``
(:mod:`slob.config.ib_config`), ``AlpacaConfig`` (``alpaca_config``), ``RiskConfig``
(``risk_config``), ``SetupConfig`` (``setup_config``), and the TOML/environment loader
(``loader``). A low room of the house (docs/architecture.md): it imports only
:mod:`slob.ib` (errors, request constants), never the rooms that use a config.
"""
