"""`slob chart` of the demo's two planted days: the interactive page renders in a real
headless Chromium with no console errors and its screenshot shows the candles; the PNG
is a picture of the same day. Also the chart model itself."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest

from slob.cli import main
from slob.ops.demo import demo_days
from slob.research.backtest import run_backtest
from slob.research.charts import day_chart
from slob.research.data import store_candles
from slob.research.render import COLORS

from chromium_cdp import CHROMIUM, Chromium

PLANTED = [(d.entry_at.date(), d) for d in demo_days()]
NO_BROWSER = ("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it in CI): "
              "the HTML chart cannot be rendered in a real browser here")


def _pixels(png: bytes, color: str) -> int:
    """How many pixels of ``png`` are within a few levels of ``color`` (#rrggbb)."""
    import matplotlib.image
    import numpy

    image = matplotlib.image.imread(io.BytesIO(png), format="png")[:, :, :3]
    want = numpy.array([int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((numpy.abs(image - want).max(axis=2) < 0.06).sum())


@pytest.mark.parametrize("day,planted", PLANTED, ids=[str(d) for d, _ in PLANTED])
def test_the_chart_of_a_planted_day_renders_in_headless_chromium(day: dt.date, planted: object, demo_db: Path,
                                                                  tmp_path: Path) -> None:
    html, png = tmp_path / "day.html", tmp_path / "day.png"
    out = io.StringIO()
    assert main(["chart", str(day), "--db", str(demo_db), "--html", str(html), "--png", str(png)], out=out) == 0
    assert "1 paper trade(s)" in out.getvalue()
    page = html.read_text(encoding="utf-8")
    # self-contained: plotly.js inlined, nothing fetched from anywhere
    assert not re.search(r"<script[^>]+src=", page)
    assert "Plotly.newPlot" in page and len(page) > 1_000_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    candles = [c for c in store_candles(demo_db, "NQ") if c.start.date() == day]
    if CHROMIUM is None:
        pytest.skip(NO_BROWSER)
    with Chromium() as browser:
        view = browser.open(html)
        drawn = view.evaluate("""new Promise((resolve, reject) => {
            const started = performance.now();
            const look = () => {
                const n = document.querySelectorAll('#slob-chart g.trace.boxes path').length;
                if (n > 0) resolve(n);
                else if (performance.now() - started > 30000) reject(new Error('no candles drawn'));
                else requestAnimationFrame(look);
            };
            look();
        })""")
        names = view.evaluate("document.getElementById('slob-chart').data.map(t => t.name)")
        shot = view.screenshot()
        assert view.errors() == []
        assert [u for u in view.requests() if not u.startswith(("file:", "data:", "blob:"))] == []
    assert 0 < drawn <= len(candles)  # plotly draws the candles of the visible range
    for name in ("LIQ #1", "LIQ #2", "trigger", "entry", f"exit at {planted.outcome}"):  # type: ignore[attr-defined]
        assert name in names
    assert any(n.startswith("LSE range") for n in names) and any(n.startswith("consolidation") for n in names)
    assert _pixels(shot, COLORS["up"]) > 150 and _pixels(shot, COLORS["down"]) > 150  # the candles show


def test_the_png_shows_rising_and_falling_candles(demo_db: Path, tmp_path: Path) -> None:
    png = tmp_path / "day.png"
    assert main(["chart", "2025-03-06", "--db", str(demo_db), "--png", str(png), "--trades", "backtest"],
                out=io.StringIO()) == 0
    shot = png.read_bytes()
    assert _pixels(shot, COLORS["up"]) > 500 and _pixels(shot, COLORS["down"]) > 500


def test_the_chart_model_marks_gaps_filled_minutes_and_rolls() -> None:
    import dataclasses

    day = demo_days()[0]
    candles = list(day.candles)
    result = run_backtest(candles, keep_events=True)
    i = len(candles) // 2
    candles[i] = dataclasses.replace(candles[i], filled=True, trades=0, volume=0.0)
    cut = candles[:i + 3] + candles[i + 6:]  # three minutes missing
    rolled = cut[:-5] + [dataclasses.replace(c, contract="NQU5") for c in cut[-5:]]
    chart = day_chart(day.entry_at.date(), rolled, result.events, result.trades)
    kinds = sorted(s.kind for s in chart.spans)
    assert kinds == ["filled", "gap", "roll"]
    gap = next(s for s in chart.spans if s.kind == "gap")
    assert gap.label == "3 minute(s) missing" and gap.end - gap.start == dt.timedelta(minutes=3)
    markers = {m.kind for m in chart.markers}
    assert {"liq1", "liq2", "trigger", "entry", "exit_target"} <= markers
    assert {b.kind for b in chart.boxes} == {"lse", "consolidation"}
    lse = next(b for b in chart.boxes if b.kind == "lse")
    assert (lse.low, lse.high) == (day.lse_low, day.lse_high)
    assert {lv.kind: lv.price for lv in chart.levels} == {"stop": day.stop, "target": day.target}
    assert chart.focus is not None and chart.focus[0] < day.liq1_at < day.entry_at < chart.focus[1]


def test_without_the_charts_extra_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from slob.ib.errors import SlobError
    from slob.research.charts import Chart
    from slob.research.render import render_html, render_png

    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for render in (render_html, render_png):
        with pytest.raises(SlobError, match=r"pip install 'slob\[charts\]'"):
            render(Chart("empty"))
