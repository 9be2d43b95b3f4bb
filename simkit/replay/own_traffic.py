"""The load of its own that ``simkit calibrate`` gives a version whose traffic starts mid-recording
(a candidate at weight 0 until the first iteration): its recorded traffic, scrape interval by
scrape interval.

Why not one steady rate from the onset: PromQL's ``increase()`` over the window of a series born
inside it depends on the series' value at its first scrape and at the last one (Prometheus
extrapolates from the first toward zero, clamped by how far back zero lies at the sampled rate).
A candidate's traffic follows the weights the policy gave it and stops at a rollback, so its
recorded counter can go flat before the window ends. A steady rate spread from the onset to the
last scrape then has too low a rate at the start: the onset is clipped to one scrape interval, the
simulated first scrape holds fewer predictions than the recorded one, and ``increase()``
extrapolates the two differently (the serve-path rollback's candidate came out 5.8 % off).

So the load keeps every scrape interval's recorded count, in expectation:

- the first scrape's count, from where the next interval's rate puts its start (as
  ``increase()`` extrapolates toward zero), at most one scrape interval back;
- then each interval's count at its own rate, consecutive intervals whose counts one Poisson
  rate explains (within :data:`MERGE_Z` standard deviations) merged into one segment;
- nothing after the last interval in which the counter grew (a rollback's flat tail).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MERGE_Z = 3.0  # an interval joins the segment before it when its count is within 3 sd of its rate


@dataclass(frozen=True)
class Segment:
    """Predictions recorded over [start, end] (Unix seconds), sent at a steady rate."""

    start: float
    end: float
    predictions: float

    @property
    def qps(self) -> float:
        return self.predictions / max(self.end - self.start, 1e-9)


@dataclass(frozen=True)
class OwnTraffic:
    segments: tuple[Segment, ...]
    last: float  # the last recorded scrape: the window's end

    @property
    def onset(self) -> float:
        return self.segments[0].start

    @property
    def predictions(self) -> float:
        return sum(s.predictions for s in self.segments)

    @property
    def runs_to_the_end(self) -> bool:
        """Its traffic was still flowing at the last scrape (no flat tail)."""
        return self.segments[-1].end >= self.last - 1e-6

    @property
    def tail_span(self) -> float | None:
        """Seconds over which its predictions would have arrived at its final rate: a call arriving
        within its latency of the last scrape has not completed by then, so the lost fraction
        of its calls is latency / tail_span. None when its traffic stopped before the last scrape
        (every call had time to complete)."""
        final = self.segments[-1]
        if not self.runs_to_the_end or final.qps <= 0:
            return None
        return self.predictions / final.qps


def own_traffic(
    intervals: Sequence[tuple[float, float, float]], birth: float, step: float
) -> OwnTraffic | None:
    """The version's load from its recorded counts: ``intervals`` are the recorded scrape
    intervals (lo, hi, predictions) over the whole span, the last ending at the last scrape; its
    series were born (from zero) at the scrape ``birth``; ``step`` is the scrape interval. None
    when it recorded no predictions."""
    first_count = sum(n for _, b, n in intervals if b <= birth + 0.5 * step)
    after = [(a, b, n) for a, b, n in intervals if a >= birth - 0.5 * step]
    busy = next(((a, b, n) for a, b, n in after if n > 0), None)
    rate = busy[2] / max(busy[1] - busy[0], 1e-9) if busy is not None else first_count / step
    back = first_count / rate if rate > 0 else step
    # at least a hundredth of an interval back: a segment the Scenario's six digits can still state
    segments = [Segment(birth - min(step, max(back, 0.01 * step)), birth, first_count)]
    grew = max((i for i, (_, _, n) in enumerate(after) if n > 0), default=-1)
    current: Segment | None = None
    for a, b, n in after[: grew + 1]:
        if current is not None:
            expected = current.qps * (b - a)
            if abs(n - expected) <= MERGE_Z * math.sqrt(max(expected, 1.0)):
                current = Segment(current.start, b, current.predictions + n)
                continue
            segments.append(current)
        current = Segment(a, b, n)
    if current is not None:
        segments.append(current)
    kept = tuple(s for s in segments if s.predictions > 0)
    return OwnTraffic(kept, intervals[-1][1]) if kept else None
