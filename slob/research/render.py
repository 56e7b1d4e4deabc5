"""Drawing a :class:`~slob.research.charts.Chart`: an interactive HTML page with plotly,
a PNG with matplotlib (both in the ``charts`` extra, imported here only).

Why two libraries: plotly writes one self-contained HTML file -- its JavaScript inlined,
no CDN, so the page works offline -- with zoom, pan and hover on every candle and marker;
its PNG export needs a browser (kaleido), which a server or CI may not have. matplotlib
draws PNGs headless (Agg) from the wheel alone. Both are mature, widely used and well
kept. The colours and symbols are the legend of :mod:`slob.research.charts`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
from pathlib import Path
from typing import Any

from slob.ib.errors import SlobError
from slob.research.charts import Chart

__all__ = ["COLORS", "render_html", "render_png", "write_chart"]

COLORS = {
    "up": "#26a69a", "down": "#ef5350", "lse": "#1e88e5", "consolidation": "#fb8c00", "stop": "#d32f2f",
    "target": "#2e7d32", "entry": "#000000", "liq1": "#6a1b9a", "liq2": "#6a1b9a", "trigger": "#37474f",
    "exit_target": "#2e7d32", "exit_stop": "#d32f2f", "exit_roll": "#8e24aa", "gap": "#e53935",
    "filled": "#9e9e9e", "roll": "#8e24aa", "equity": "#1e88e5",
}
_PLOTLY_SYMBOLS = {"liq1": "triangle-down", "liq2": "diamond", "trigger": "x", "entry": "circle",
                   "exit_target": "star", "exit_stop": "star", "exit_roll": "star"}
_MPL_SYMBOLS = {"liq1": "v", "liq2": "D", "trigger": "X", "entry": "o", "exit_target": "*", "exit_stop": "*",
                "exit_roll": "*"}
_NAMES = {"liq1": "LIQ #1", "liq2": "LIQ #2", "trigger": "trigger", "entry": "entry", "exit_target": "exit at target",
          "exit_stop": "exit at stop", "exit_roll": "exit at roll", "gap": "gap", "filled": "filled minutes",
          "roll": "roll", "stop": "stop", "target": "target", "lse": "LSE high/low", "consolidation": "consolidation"}
HTML_DIV_ID = "slob-chart"


def _missing(library: str) -> SlobError:
    return SlobError(f"drawing charts needs {library}, which is in slob's charts extra: "
                     "pip install 'slob[charts]' (plotly for HTML, matplotlib for PNG)")


def write_chart(chart: Chart, path: Path) -> Path:
    """Write ``chart`` as HTML (``.html``/``.htm``) or PNG (``.png``), by the suffix."""
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        path.write_text(render_html(chart), encoding="utf-8")
    elif suffix == ".png":
        path.write_bytes(render_png(chart))
    else:
        raise SlobError(f"{path}: a chart is written as .html or .png")
    return path


# -- HTML (plotly) -------------------------------------------------------------------------


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def render_html(chart: Chart) -> str:
    """One self-contained HTML page (plotly.js inlined: no network needed)."""
    try:
        go: Any = importlib.import_module("plotly.graph_objects")
    except ImportError:
        raise _missing("plotly") from None
    fig = go.Figure()
    c = chart.candles
    if c:
        fig.add_trace(go.Candlestick(
            x=[_utc(k.start) for k in c], open=[k.open for k in c], high=[k.high for k in c],
            low=[k.low for k in c], close=[k.close for k in c], name=f"{c[0].symbol} 1 min",
            increasing={"line": {"color": COLORS["up"]}, "fillcolor": COLORS["up"]},
            decreasing={"line": {"color": COLORS["down"]}, "fillcolor": COLORS["down"]}))
    for box in chart.boxes:
        fig.add_trace(go.Scatter(
            x=[_utc(box.start), _utc(box.end), _utc(box.end), _utc(box.start), _utc(box.start)],
            y=[box.low, box.low, box.high, box.high, box.low], mode="lines", fill="toself",
            line={"color": COLORS[box.kind], "width": 1}, opacity=0.25 if box.kind == "lse" else 0.45,
            name=box.label, hoverinfo="name", legendgroup=box.kind))
    for level in chart.levels:
        fig.add_trace(go.Scatter(x=[_utc(level.start), _utc(level.end)], y=[level.price, level.price], mode="lines",
                                 line={"color": COLORS[level.kind], "width": 2, "dash": "dash"}, name=level.label,
                                 hoverinfo="name", legendgroup=level.kind))
    kinds = sorted({m.kind for m in chart.markers}, key=list(_PLOTLY_SYMBOLS).index)
    for kind in kinds:
        ms = [m for m in chart.markers if m.kind == kind]
        fig.add_trace(go.Scatter(
            x=[_utc(m.time) for m in ms], y=[m.price for m in ms], mode="markers", name=_NAMES[kind],
            text=[m.label for m in ms], hovertemplate="%{text}<br>%{x} UTC<br>%{y:,.2f}<extra></extra>",
            marker={"symbol": _PLOTLY_SYMBOLS[kind], "size": 13, "color": COLORS[kind],
                    "line": {"width": 1, "color": "#ffffff"}}))
    for span in chart.spans:
        if span.kind == "roll":
            fig.add_vline(x=_utc(span.start), line={"color": COLORS["roll"], "dash": "dash", "width": 2})
        else:
            fig.add_vrect(x0=_utc(span.start), x1=_utc(span.end), fillcolor=COLORS[span.kind], opacity=0.18,
                          line_width=0, layer="below")
    for s in chart.series:
        fig.add_trace(go.Scatter(x=[_utc(t) for t in s.times], y=list(s.values), mode="lines+markers",
                                 line={"shape": "hv", "color": COLORS["equity"], "width": 2}, name=s.label))
    xaxis: dict[str, Any] = {"title": "time (UTC)", "rangeslider": {"visible": False}}
    yaxis: dict[str, Any] = {"title": chart.y_label}
    if chart.focus is not None and c:  # open on the setups and trades; double-click shows the whole day
        xaxis["range"] = [_utc(chart.focus[0]), _utc(chart.focus[1])]
        inside = [k for k in c if chart.focus[0] <= k.start < chart.focus[1]]
        prices = [k.low for k in inside] + [k.high for k in inside] + [lv.price for lv in chart.levels]
        if prices:
            pad = (max(prices) - min(prices)) * 0.06 or 1.0
            yaxis["range"] = [min(prices) - pad, max(prices) + pad]
    legend_notes = sorted({_NAMES[s.kind] for s in chart.spans})
    subtitle = ("shaded: " + ", ".join(legend_notes)) if legend_notes else ""
    fig.update_layout(
        title={"text": chart.title + (f"<br><sup>{subtitle}</sup>" if subtitle else "")},
        xaxis=xaxis, yaxis=yaxis,
        template="plotly_white", hovermode="closest", height=700,
        legend={"orientation": "h", "yanchor": "top", "y": -0.12})
    html: str = fig.to_html(include_plotlyjs=True, full_html=True, div_id=HTML_DIV_ID,
                            config={"displaylogo": False, "responsive": True})
    return html


# -- PNG (matplotlib) ----------------------------------------------------------------------


def render_png(chart: Chart, *, width: float = 14.0, height: float = 8.0, dpi: int = 110) -> bytes:
    """The chart as PNG bytes (matplotlib's Agg backend: no display needed). A day chart
    with a focus (its setups and trades) gets two panels: the whole day above, the focus
    below, zoomed in."""
    try:  # typed as Any: matplotlib is an optional extra, outside slob's strict typing
        matplotlib: Any = importlib.import_module("matplotlib")
        matplotlib.use("Agg", force=False)
        Figure: Any = importlib.import_module("matplotlib.figure").Figure
    except ImportError:
        raise _missing("matplotlib") from None
    fig = Figure(figsize=(width, height), dpi=dpi)
    if chart.focus is not None and chart.candles:
        top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 2]})
        _draw(top, chart, None, legend=False, detail=False)
        top.set_title(chart.title + ": the whole day")
        top.axvspan(*[_num(t) for t in chart.focus], color="#fdd835", alpha=0.25, linewidth=0, zorder=0)
        _draw(bottom, chart, chart.focus, legend=True, detail=True)
        bottom.set_title("zoomed on the setups and trades (yellow above)")
    else:
        _draw(fig.add_subplot(1, 1, 1), chart, None, legend=True, detail=True)
        fig.axes[0].set_title(chart.title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _num(t: dt.datetime) -> float:
    value: float = importlib.import_module("matplotlib.dates").date2num(t)
    return value


def _draw(ax: Any, chart: Chart, window: tuple[dt.datetime, dt.datetime] | None, *, legend: bool,
          detail: bool) -> None:
    """Everything of ``chart`` on ``ax``, limited to ``window`` (default: all of it)."""
    mdates: Any = importlib.import_module("matplotlib.dates")
    Line2D: Any = importlib.import_module("matplotlib.lines").Line2D
    patches: Any = importlib.import_module("matplotlib.patches")
    Patch, Rectangle = patches.Patch, patches.Rectangle
    num = _num
    minute = 1.0 / 1440.0
    handles: list[Any] = []
    c = [k for k in chart.candles if window is None or window[0] <= k.start < window[1]]
    if c:
        xs = [num(k.start) + minute / 2 for k in c]
        colors = [COLORS["up"] if k.close >= k.open else COLORS["down"] for k in c]
        ax.vlines(xs, [k.low for k in c], [k.high for k in c], colors=colors, linewidth=0.8 if detail else 0.5,
                  zorder=3)
        ax.bar(xs, [max(abs(k.close - k.open), 1e-9) for k in c], bottom=[min(k.open, k.close) for k in c],
               width=minute * 0.7, color=colors, edgecolor=colors, linewidth=0.4, zorder=4)
        handles.append(Patch(color=COLORS["up"], label=f"{c[0].symbol} 1 min candles (green up, red down)"))
    for box in chart.boxes:
        ax.add_patch(Rectangle((num(box.start), box.low), num(box.end) - num(box.start), box.high - box.low,
                               facecolor=COLORS[box.kind], alpha=0.12 if box.kind == "lse" else 0.3,
                               edgecolor=COLORS[box.kind], linewidth=1, zorder=1 if box.kind == "lse" else 2))
    for kind in sorted({b.kind for b in chart.boxes}):
        handles.append(Patch(facecolor=COLORS[kind], alpha=0.3, edgecolor=COLORS[kind], label=_NAMES[kind]))
    for level in chart.levels:
        ax.hlines(level.price, num(level.start), num(level.end), colors=COLORS[level.kind], linestyles="dashed",
                  linewidth=1.6, zorder=5)
    for kind in sorted({lv.kind for lv in chart.levels}):
        handles.append(Line2D([], [], color=COLORS[kind], linestyle="dashed", label=_NAMES[kind]))
    for span in chart.spans:
        if span.kind == "roll":
            ax.axvline(num(span.start), color=COLORS["roll"], linestyle="dashed", linewidth=1.5, zorder=2)
        else:
            ax.axvspan(num(span.start), num(span.end), color=COLORS[span.kind], alpha=0.18, linewidth=0, zorder=0)
    for kind in sorted({s.kind for s in chart.spans}):
        handles.append(Patch(color=COLORS[kind], alpha=0.4, label=_NAMES[kind]))
    for kind in sorted({m.kind for m in chart.markers}, key=list(_MPL_SYMBOLS).index):
        ms = [m for m in chart.markers if m.kind == kind]
        offset = minute / 2 if kind in ("liq1", "liq2", "trigger") else 0.0
        ax.scatter([num(m.time) + offset for m in ms], [m.price for m in ms], marker=_MPL_SYMBOLS[kind],
                   s=(140 if kind.startswith("exit") else 80) if detail else 30, color=COLORS[kind],
                   edgecolors="white", linewidths=0.8, zorder=6)
        handles.append(Line2D([], [], marker=_MPL_SYMBOLS[kind], color=COLORS[kind], linestyle="", label=_NAMES[kind]))
    for s in chart.series:
        ax.step([num(t) for t in s.times], list(s.values), where="post", color=COLORS["equity"], linewidth=2)
        ax.plot([num(t) for t in s.times], list(s.values), "o", color=COLORS["equity"], markersize=4)
        ax.axhline(0.0, color="#757575", linewidth=0.8)
        handles.append(Line2D([], [], color=COLORS["equity"], label=s.label))
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel(chart.y_label)
    ax.grid(True, color="#e0e0e0", linewidth=0.6, zorder=0)
    if c:
        ax.set_xlim(num(c[0].start), num(c[-1].end))
        lo, hi = num(c[0].start), num(c[-1].end)
        prices = [k.low for k in c] + [k.high for k in c] + [lv.price for lv in chart.levels] + [
            m.price for m in chart.markers if lo <= num(m.time) <= hi]
        if window is None:
            prices += [b.low for b in chart.boxes] + [b.high for b in chart.boxes]
        low, high = min(prices), max(prices)
        pad = (high - low) * 0.05 or 1.0
        ax.set_ylim(low - pad, high + pad)
    if legend and handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, ncol=6,
                  frameon=False)
