"""TokenBucket (``slob.ib.pacing``) on an injected clock: whatever the request times, a
caller that sends each message at (request time + the delay ``reserve()`` returned)
never puts more than N messages in any one-second window, and waits only when it has
used up its burst."""

from __future__ import annotations

import bisect
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from slob.ib.pacing import TokenBucket

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def schedule(per_second: int, request_times: list[float], start: float) -> tuple[list[float], list[float]]:
    """(delays, send times) for requests made at ``request_times`` (non-decreasing)."""
    clock = FakeClock(start)
    bucket = TokenBucket(per_second, clock=clock)
    delays, sends = [], []
    for t in request_times:
        clock.now = t
        delay = bucket.reserve()
        delays.append(delay)
        sends.append(t + delay)
    return delays, sends


def busiest_second(sends: list[float]) -> int:
    """The most sends in any half-open window [t, t+1): enough to check windows that
    start at a send."""
    ordered = sorted(sends)
    return max((bisect.bisect_left(ordered, s + 1.0) - i for i, s in enumerate(ordered)), default=0)


# Gaps between requests: bursts (0), sub-tick gaps, gaps around the refill time, idles.
GAPS = st.one_of(
    st.just(0.0),
    st.floats(min_value=0.0, max_value=0.05),
    st.floats(min_value=0.0, max_value=1.5),
    st.sampled_from([0.02, 0.025, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 10.0]),
)


@st.composite
def request_times(draw: st.DrawFn) -> tuple[float, list[float]]:
    start = draw(st.sampled_from([0.0, 1000.0, 12345.678, 1e6]))
    first = draw(st.floats(min_value=0.0, max_value=3.0))
    gaps = draw(st.lists(GAPS, min_size=1, max_size=300))
    times, t = [], start + first
    for g in gaps:
        t += g
        times.append(t)
    return start, times


@PROPERTY
@given(st.integers(min_value=1, max_value=50), request_times())
@example(1, (0.0, [0.0, 0.5, 0.9, 1.0, 1.7, 2.0]))
@example(50, (0.0, [0.0] * 60 + [0.5] * 60 + [1.0] * 60))
def test_no_one_second_window_holds_more_than_n_sends(per_second: int, requests: tuple[float, list[float]]) -> None:
    start, times = requests
    delays, sends = schedule(per_second, times, start)
    assert all(d >= 0 and math.isfinite(d) for d in delays)
    assert busiest_second(sends) <= per_second
    # Messages leave in the order they were requested.
    assert sends == sorted(sends)


@PROPERTY
@given(st.integers(min_value=1, max_value=50), st.integers(min_value=1, max_value=120),
       st.sampled_from([0.0, 1000.0, 1e6]))
def test_a_burst_from_a_full_bucket_waits_only_past_its_capacity(per_second: int, n: int, at: float) -> None:
    delays, sends = schedule(per_second, [at] * n, at)
    burst = math.floor(max(1.0, per_second / 5))
    assert delays[:burst] == [0.0] * min(n, burst)
    assert all(d > 0 for d in delays[burst:])
    assert busiest_second(sends) <= per_second


@PROPERTY
@given(st.integers(min_value=1, max_value=50), request_times(), st.integers(min_value=1, max_value=60))
def test_after_a_long_enough_idle_the_burst_is_free_again(
    per_second: int, requests: tuple[float, list[float]], n: int,
) -> None:
    start, times = requests
    delays, sends = schedule(per_second, times, start)
    # Continue the same bucket: idle until well after the last send, then a burst.
    clock = FakeClock(start)
    bucket = TokenBucket(per_second, clock=clock)
    for t in times:
        clock.now = t
        bucket.reserve()
    clock.now = max(sends) + 2.0  # a full refill takes capacity/rate <= 1 s
    burst_delays = [bucket.reserve() for _ in range(n)]
    burst = math.floor(max(1.0, per_second / 5))
    assert burst_delays[:burst] == [0.0] * min(n, burst)
    assert all(d > 0 for d in burst_delays[burst:])


@pytest.mark.parametrize("per_second", [1, 2, 5, 45, 50])
def test_a_flood_is_spread_at_the_sustained_rate(per_second: int) -> None:
    """1,000 requests at one instant: none refused, none lost, the busiest second holds
    at most N sends, and after the burst (N/5, at least 1) they leave at the sustained
    rate (4N/5 per second; 0.999 per second for N = 1), not slower."""
    delays, sends = schedule(per_second, [0.0] * 1000, 0.0)
    assert busiest_second(sends) <= per_second
    burst = max(1.0, per_second / 5)
    rate = per_second - burst if per_second > 1 else 0.999
    assert sends[-1] - sends[0] == pytest.approx((1000 - burst) / rate, rel=1e-9)
    if per_second == 1:
        gaps = [b - a for a, b in zip(sends, sends[1:])]
        assert min(gaps) > 1.0  # one message per second, with room for rounding


def test_per_second_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="per_second"):
        TokenBucket(0)


def test_the_default_clock_is_monotonic() -> None:
    bucket = TokenBucket(45)
    assert bucket.reserve() == 0.0
