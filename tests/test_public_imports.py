"""Every public import users may have keeps working after the house move (issue 19).

The data below was collected by grepping docs/, README.md and the design notes
(../shared/DESIGN.md) before and after the move, plus every module path slob had before
it and the public names of each module that moved. It is kept here as data: a module that
moves again must leave a shim (tests/test_architecture.py, SHIMS), and this test keeps the
old paths honest.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

#: ``from MODULE import NAME`` lines in docs/, README.md and DESIGN.md (before and after the move).
DOCUMENTED_IMPORTS: dict[str, list[str]] = {
    "slob.config.ib_config": [
        "IBConfig",
    ],
    "slob.live": [
        "Candle", "ConnectionLost", "ContractNotFound", "Gap", "IBWSFetcher", "LiveTradingEngine",
        "MarketDataNotSubscribed", "Quote", "SlobError", "Tick",
    ],
    "slob.model": [
        "ConnectionLost", "ConnectionRestored",
    ],
    "slob.research": [
        "BacktestConfig", "frame", "run_backtest",
    ],
    "slob.research.candle_block": [
        "pack",
    ],
    "slob.research.data": [
        "StoreTicks", "csv_candles", "store_candles",
    ],
    "slob.research.executors": [
        "LocalPool",
    ],
    "slob.research.grid": [
        "load_grid",
    ],
    "slob.research.settings": [
        "apply_settings",
    ],
    "slob.research.sweep": [
        "collect", "make_plan", "trading_days",
    ],
    "slob.research.sweep_table": [
        "build_rows", "records", "summarize",
    ],
    "slob.testing": [
        "FakeTWS", "FaultProxy", "ScriptedScenario",
    ],
    "slob.testing.replay": [
        "ReplayTWS",
    ],
    "slob.ib.errors": [
        "SlobError",
    ],
}

#: Dotted paths named in docs/, README.md and DESIGN.md: a module, or a module's attribute.
DOCUMENTED_PATHS: list[str] = [
    "slob.aio", "slob.bench", "slob.cli", "slob.commands", "slob.commands.common", "slob.config",
    "slob.config.ib_config", "slob.execution", "slob.execution.gateway.OrderGateway",
    "slob.execution.reconcile.differences", "slob.ib", "slob.ib.bridge", "slob.ib.client",
    "slob.ib.handshake", "slob.ib.history_pacing", "slob.ib.hot_decoder", "slob.ib.pacing", "slob.ib.ticks",
    "slob.ib.ticks.trade", "slob.ib.wire.FrameDecoder", "slob.live", "slob.live.LiveTradingEngine",
    "slob.live.delivery", "slob.live.delivery.Delivery", "slob.live.delivery.Delivery.process",
    "slob.live.feed_switch", "slob.live.gapfill", "slob.live.ib_history.IBHistory",
    "slob.live.setup_planting.plant_setup", "slob.live.setup_tracker", "slob.live.store",
    "slob.live.store.Store", "slob.live.warmup", "slob.market", "slob.model", "slob.model.Candle",
    "slob.model.new_tick", "slob.ops", "slob.orders", "slob.report", "slob.require_ibapi", "slob.research",
    "slob.research.bench", "slob.research.candle_block", "slob.research.data", "slob.research.executors",
    "slob.research.frame", "slob.research.grid", "slob.research.settings", "slob.research.sweep",
    "slob.research.sweep_bench", "slob.research.sweep_table", "slob.soak", "slob.soak.calendar",
    "slob.soak.checks", "slob.soak.child", "slob.soak.faults", "slob.soak.market", "slob.store",
    "slob.store.store", "slob.store.store.Store", "slob.strategy",
    "slob.strategy.setup_planting.plant_setup", "slob.testing", "slob.testing.FakeTWS",
    "slob.testing.FaultProxy", "slob.testing.fake_history",
    "slob.testing.fake_session.SessionHost", "slob.testing.fault_frames.FrameNamer", "slob.testing.replay",
    "slob.testing.replay.ReplayTWS", "slob.testing.tws_versions.PROTOBUF_FROM", "slob.trace",
    "slob.trace.bench",
]

#: Every module slob had before the house move (users may import any of them).
MODULES_BEFORE_THE_MOVE: list[str] = [
    "slob", "slob.bench", "slob.bench.__main__", "slob.bench.clients", "slob.bench.feed",
    "slob.bench.harness", "slob.bench.options", "slob.bench.report", "slob.checkpoint", "slob.cli",
    "slob.commands", "slob.commands.backtest", "slob.commands.bench", "slob.commands.chart",
    "slob.commands.checkpoint", "slob.commands.common", "slob.commands.contracts", "slob.commands.decode",
    "slob.commands.demo", "slob.commands.export", "slob.commands.history", "slob.commands.live_view",
    "slob.commands.report", "slob.commands.run", "slob.commands.run_view", "slob.commands.sim",
    "slob.commands.soak", "slob.commands.sweep", "slob.commands.trace", "slob.commands.version",
    "slob.config", "slob.config.alpaca_config", "slob.config.ib_config", "slob.config.loader",
    "slob.contracts_command", "slob.demo", "slob.execution", "slob.execution.daily_pnl",
    "slob.execution.intents", "slob.execution.reconcile", "slob.ib", "slob.ib.bridge", "slob.ib.client",
    "slob.ib.errors", "slob.ib.handshake", "slob.ib.history", "slob.ib.history_pacing",
    "slob.ib.hot_decoder", "slob.ib.order_conversion", "slob.ib.pacing", "slob.ib.ticks", "slob.ib.version",
    "slob.ib.wire", "slob.live", "slob.live.alpaca_connection", "slob.live.alpaca_protocol",
    "slob.live.alpaca_ws_fetcher", "slob.live.backoff", "slob.live.callbacks", "slob.live.candle_aggregator",
    "slob.live.delivery", "slob.live.direct_lane", "slob.live.event_bus", "slob.live.expiry_book",
    "slob.live.feed_switch", "slob.live.gapfill", "slob.live.ib_contract_manager", "slob.live.ib_feeds",
    "slob.live.ib_history", "slob.live.ib_session", "slob.live.ib_supervisor", "slob.live.ib_ws_fetcher",
    "slob.live.live_trading_engine", "slob.live.order_executor", "slob.live.outages",
    "slob.live.session_machine", "slob.live.sessions", "slob.live.setup_planting", "slob.live.setup_tracker",
    "slob.live.stats", "slob.live.store", "slob.live.store_records", "slob.live.store_schema",
    "slob.live.symbols", "slob.live.warmup", "slob.model", "slob.orders", "slob.report", "slob.research",
    "slob.research.backtest", "slob.research.bench", "slob.research.candle_block", "slob.research.charts",
    "slob.research.compare", "slob.research.data", "slob.research.day", "slob.research.executors",
    "slob.research.export", "slob.research.fills", "slob.research.grid", "slob.research.history",
    "slob.research.output", "slob.research.render", "slob.research.settings", "slob.research.sources",
    "slob.research.sweep", "slob.research.sweep_bench", "slob.research.sweep_table", "slob.soak",
    "slob.soak.calendar", "slob.soak.checks", "slob.soak.child", "slob.soak.faults", "slob.soak.market",
    "slob.soak.process", "slob.soak.report", "slob.soak.runner", "slob.testing",
    "slob.testing.alpaca_market", "slob.testing.alpaca_session", "slob.testing.captures",
    "slob.testing.fake_alpaca", "slob.testing.fake_eclient", "slob.testing.fake_history",
    "slob.testing.fake_market", "slob.testing.fake_orders", "slob.testing.fake_session",
    "slob.testing.fake_tws", "slob.testing.fault_frames", "slob.testing.fault_link",
    "slob.testing.fault_proxy", "slob.testing.futures", "slob.testing.history_tape",
    "slob.testing.loop_thread", "slob.testing.order_records", "slob.testing.pytest_plugin",
    "slob.testing.replay", "slob.testing.scenario", "slob.testing.tws_history_messages",
    "slob.testing.tws_messages", "slob.testing.tws_order_messages", "slob.testing.tws_proto_history",
    "slob.testing.tws_proto_messages", "slob.testing.tws_proto_orders", "slob.testing.tws_proto_requests",
    "slob.testing.tws_requests", "slob.testing.tws_versions", "slob.trace", "slob.trace.bench",
    "slob.trace.describe", "slob.trace.events", "slob.trace.filters", "slob.trace.layouts",
    "slob.trace.protobuf_table", "slob.trace.proxy", "slob.trace.recording", "slob.zones",
]

#: Public names of the modules that moved (old path -> names): importable from the old path.
MOVED_NAMES: dict[str, list[str]] = {
    "slob.zones": [
        "ib_zone",
    ],
    "slob.live.expiry_book": [
        "CHICAGO", "ExpiryBook", "ListedContract", "parse_sessions", "roll_moment",
    ],
    "slob.live.sessions": [
        "CHICAGO", "CmeHours", "LONDON", "LSE", "NEW_YORK", "NYSE", "ib_zone", "lse_session", "nyse_session",
        "session_at", "trading_day", "us_equity_open",
    ],
    "slob.live.symbols": [
        "FORMS", "SymbolSpec", "expiry_moment", "parse_symbol",
    ],
    "slob.live.candle_aggregator": [
        "CandleAggregator",
    ],
    "slob.live.setup_tracker": [
        "CandleRejected", "Consolidation", "Direction", "IllegalTransition", "SetupChanged", "SetupConfig",
        "SetupEvent", "SetupReady", "SetupTracker", "Signal", "State", "TRANSITIONS", "next_state",
    ],
    "slob.live.setup_planting": [
        "OUTCOMES", "PlantedSetup", "plant_setup",
    ],
    "slob.live.store": [
        "CandleRecord", "ConnectionEvent", "ErrorEvent", "FillRecord", "HistorySpan", "MIGRATIONS",
        "OrderRecord", "OrderStatusRecord", "RunRecord", "RunStarted", "RunStopped", "SCHEMA_VERSION",
        "SetupRecord", "Store", "StoreClosed", "StoreError", "StoreStats", "StoreVersionError",
        "default_db_path",
    ],
    "slob.live.store_records": [
        "CANDLE_SOURCES", "CandleRecord", "ConnectionEvent", "ErrorEvent", "FillRecord", "HistorySpan",
        "OrderRecord", "OrderStatusRecord", "RunRecord", "RunStarted", "RunStopped", "SetupRecord",
        "StoreClosed", "StoreError", "StoreRecord", "StoreStats", "StoreVersionError", "URGENT",
    ],
    "slob.live.store_schema": [
        "MIGRATIONS", "ROWS", "Row", "SCHEMA_VERSION", "SQL", "TABLES", "event_from_row", "from_ns",
        "migrate", "to_ns",
    ],
    "slob.live.order_executor": [
        "BracketPlaced", "OrderExecutor", "RiskConfig", "SetupSkipped", "TradePlan",
    ],
    "slob.testing.loop_thread": [
        "LoopThread",
    ],
    "slob.testing.captures": [
        "Capture", "CapturedFrame", "Handshake", "load_capture",
    ],
    "slob.testing.tws_requests": [
        "Request", "RequestError", "decode_request", "layout", "request_name",
    ],
    "slob.testing.tws_proto_requests": [
        "ProtobufRequestError", "parse_request",
    ],
    "slob.report": [
        "DayReport", "MULTIPLIERS", "NO_DATA", "Report", "ReportInput", "TradeRow", "build_report",
        "day_bounds", "max_drawdown", "report_json", "trade_days", "trading_day",
    ],
    "slob.checkpoint": [
        "CheckpointRecorder", "ClockMap", "Criterion", "FORMAT", "GapMeter", "Outage", "OutageLog",
        "QuietPeriod", "evaluate", "explain", "open_segments", "render_text",
    ],
    "slob.demo": [
        "DemoMarket", "DemoStats", "Step", "TradeRow", "demo_days", "demo_market", "run_demo", "schedule",
    ],
    "slob.contracts_command": [
        "UnknownRoot", "run_contracts",
    ],
}

#: Names that left a module that stayed: still importable from it.
NAMES_THAT_STAYED_IMPORTABLE: dict[str, list[str]] = {
    "slob.ib.version": [
        "IbapiMissing",
    ],
    "slob.commands.report": [
        "collect", "render", "day",
    ],
    "slob.commands.history": [
        "Downloaded", "download", "write_csv",
    ],
    "slob.research.sources": [
        "IbSource", "Loaded", "load", "store_path",
    ],
    "slob.ib.client": [
        "ConnectionClosed", "FlowControl", "HistoryUpdate", "IBClient", "Subscription", "SubscriptionLive",
        "TwsMessage",
    ],
    "slob.live.ib_ws_fetcher": [
        "IBWSFetcher", "LANES",
    ],
    "slob.testing.fake_tws": [
        "ClientInfo", "Connection", "DEFAULT_START", "FakeTWS", "FiredFault", "RequestFault", "SentTick",
    ],
}


def _resolve(path: str) -> Any:
    """The module ``path`` names, or the attribute of the longest importable module prefix."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ModuleNotFoundError(path)


@pytest.mark.parametrize("module", sorted(DOCUMENTED_IMPORTS))
def test_documented_imports(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in DOCUMENTED_IMPORTS[module] if not hasattr(imported, name)]
    assert not missing, f"from {module} import {', '.join(missing)} is documented but fails"


@pytest.mark.parametrize("path", DOCUMENTED_PATHS)
def test_documented_paths(path: str) -> None:
    assert _resolve(path) is not None


@pytest.mark.parametrize("module", MODULES_BEFORE_THE_MOVE)
def test_every_old_module_path_imports(module: str) -> None:
    importlib.import_module(module)


@pytest.mark.parametrize("module", sorted(MOVED_NAMES))
def test_moved_modules_keep_their_names(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in MOVED_NAMES[module] if not hasattr(imported, name)]
    assert not missing, f"{module} (a shim now) lost {missing}: re-export them from its new home"


@pytest.mark.parametrize("module", sorted(NAMES_THAT_STAYED_IMPORTABLE))
def test_names_that_moved_out_stay_importable(module: str) -> None:
    imported = importlib.import_module(module)
    missing = [name for name in NAMES_THAT_STAYED_IMPORTABLE[module] if not hasattr(imported, name)]
    assert not missing, f"{module} lost {missing}"


def test_a_shim_gives_the_same_objects() -> None:
    from slob.execution.order_executor import OrderExecutor
    from slob.live.order_executor import OrderExecutor as Old
    from slob.live.store import Store as OldStore
    from slob.store.store import Store

    assert Old is OrderExecutor and OldStore is Store
