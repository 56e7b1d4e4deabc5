"""The checkpoint report as text for people: what ``slob checkpoint`` prints and writes
as ``.txt``. Reads the JSON-ready report of :meth:`slob.ops.checkpoint.CheckpointRecorder.report`
(split from :mod:`slob.ops.checkpoint`, which re-exports :func:`render_text`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

__all__ = ["render_text"]


def _hms(text: str | None) -> str:
    return "--" if text is None else dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S")


def _gap_line(g: Mapping[str, Any], limit: float) -> str:
    why = (f"explained: {g['explained_by']}" if g["explained"]
           else "UNEXPLAINED, over the limit" if g["seconds"] > limit else "unexplained, within the limit")
    return (f"{g['measure']:<8} {_hms(g['start'])} -> {_hms(g['end'])[11:]}  {g['seconds']:8.1f} s"
            f"  (real {g['real_seconds']:.2f} s)  {why}")


def render_text(report: Mapping[str, Any]) -> str:
    """The report as text for people (what ``slob checkpoint`` prints and writes as .txt)."""
    run, ticks, gaps = report["run"], report["ticks"], report["gaps"]
    lines = [f"slob checkpoint: {report['verdict']}"]
    where = f"{run.get('host', '?')}:{run.get('port', '?')}"
    mode = run.get("mode", "live")
    speed = f", exchange clock at {run['clock_speed']:g}x" if run.get("clock_speed", 1) != 1 else ""
    lines.append(f"  {run['symbol']} from {where} ({mode}{speed}), {run['real_seconds']:.1f} s real, "
                 f"exchange time {_hms(run['exchange_start'])} -> {_hms(run['exchange_end'])} UTC")
    if run.get("feed_error"):
        lines.append(f"  ended early: {run['feed_error']}")
    if run.get("interrupted"):
        planned = float(run.get("minutes", 0)) * 60
        lines.append(f"  interrupted after {run['real_seconds']:.1f} s of {planned:g} s: the verdict covers that part only")
    lines.append("")
    lines.append("criteria")
    for k in report["criteria"]:
        lines.append(f"  [{'PASS' if k['passed'] else 'FAIL'}] {k['description']}: {k['detail']}")
    lines.append("")
    contracts = ", ".join(f"{k} ({v})" for k, v in ticks["by_contract"].items()) or "none"
    rolls = ", ".join(f"{r['old']} -> {r['new']} at {_hms(r['at'])}" for r in report["rolls"]) or "none"
    lat = report["latency_us"]
    rej = report["rejected"]
    candles = report["candles"]
    by_interval = ", ".join(f"{n} x {int(i) // 60} min" for i, n in candles["by_interval"].items())
    market = report["market"]
    lines += [
        f"ticks       {ticks['count']} ({ticks['per_second']:g}/s real); last {ticks['last_price']} at "
        f"{_hms(ticks['last_at'])}",
        f"contracts   {contracts}; rolls: {rolls}",
        f"market      open {market['open_seconds']:.0f} s, closed (scheduled halt) {market['closed_seconds']:.0f} s "
        "of the run (exchange clock)",
        f"latency     p50 {lat['p50']} us, p99 {lat['p99']} us ({lat['measures']})",
        f"rejected    {rej['count']} {rej['by_reason'] or ''}(duplicates {rej['duplicates']}, decode errors "
        f"{rej['decode_errors']})",
        f"candles     {candles['built']} built ({by_interval}; {candles['filled']} filled, "
        f"{candles['late_ticks']} late ticks)",
        f"reconnects  {report['reconnects']['count']}"
        + (f" ({', '.join(f'{c}: {n}' for c, n in report['reconnects']['causes'].items())})"
           if report["reconnects"]["causes"] else ""),
    ]
    recon = report["reconnects"]
    if recon["resubscribed_after_1101"]:
        lines[-1] += f"; {recon['resubscribed_after_1101']} resubscription(s) after IB 1101"
    lines.append(f"outages     {len(report['outages'])}")
    for o in report["outages"]:
        if not o["recovered"]:
            end = "NOT RESTORED"
        elif o["kind"] == "socket":
            end = "reconnected, resubscribed"
        else:
            end = f"{o['restored_by']} ({'data lost, resubscribed' if o['data_lost'] else 'subscriptions kept'})"
        lines.append(f"  {o['kind']:<12} {_hms(o['start'])} exchange ({_hms(o['real_start'])[11:]} real), "
                     f"{o['seconds']:.1f} s ({o['real_seconds']:.2f} s real): {o['cause']} -> {end}")
    le, lr = gaps["longest_exchange"], gaps["longest_real"]
    lines.append(f"gaps        longest exchange {le['seconds'] if le else 0:.1f} s"
                 f"{'' if not le else ' (explained)' if le['explained'] else ' (unexplained)'}, "
                 f"longest real {lr['seconds'] if lr else 0:.1f} s"
                 f"{'' if not lr else ' (explained)' if lr['explained'] else ' (unexplained)'}; "
                 f"limit {gaps['max_gap_seconds']:g} s for unexplained gaps")
    if gaps["listed"]:
        lines.append(f"  quiet periods of {gaps['listed_from_seconds']:g} s or more (exchange clock, "
                     "halts cut out):")
        lines += [f"  {_gap_line(g, gaps['max_gap_seconds'])}" for g in gaps["listed"]]
        if gaps["omitted"]:
            lines.append(f"  ... and {gaps['omitted']} more")
    sim = run.get("sim")
    if sim:
        fired, extra = sim.get("faults", []), sim.get("fault", "none")
        added = "no failing fault added" if extra == "none" else f"--sim-fault {extra} added (the run should FAIL)"
        lines.append(f"sim faults  {len(fired)} injected: the recoverable schedule, {added}")
        lines += [f"  +{f['at_seconds']:6.2f} s  {f['fault']}" for f in fired]
    memory = report.get("memory")
    if memory:
        lines.append(f"memory      {memory['live_minutes']} trading minutes live, {memory['history_minutes']} from "
                     f"IB's history, {memory['missing_minutes']} missing ({memory['gaps']} gap(s))")
        lines += [f"  {_hms(s['start'])} -> {_hms(s['end'])[11:]}  "
                  + (f"filled ({s['bars']} bars)" if s["filled"] else f"NOT FILLED: {s['why_not']}")
                  for s in memory["spans"]]
    errors = report["errors"]
    if errors["count"]:
        lines.append(f"errors      {errors['count']}")
        lines += [f"  {e}" for e in errors["first"]]
    if report["reasons"]:
        lines.append("")
        lines.append("FAIL because:")
        lines += [f"  - {r}" for r in report["reasons"]]
    return "\n".join(lines) + "\n"
