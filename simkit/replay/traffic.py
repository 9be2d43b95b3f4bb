"""How much traffic each version really got in the recording: the logged exposure envelope.

A recording rarely says what the router's weights were, but it always holds each version's
request counters. The recorded weight of version v over an interval is its share of the routed
requests, n_v / N, with a Wilson interval at z = 3.29 (99.9 %) so that sampling noise in a short
interval does not flag a policy that sent exactly the recorded share. Requests are read from one
``*_count`` family (prefer the executor's client histogram), skipping feedback calls, which are
not routed. Counter resets are corrected as Prometheus' ``increase`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simkit.replay.selectors import MetricSelectors
from simkit.tsdb import TSDB, Series

Z = 3.29
F64 = npt.NDArray[np.float64]


def cumulative(series: Series) -> tuple[F64, F64]:
    """(timestamps, reset-corrected running total) of a counter."""
    t, v = series.arrays()
    if v.size == 0:
        return t, v
    d = np.diff(v)
    inc = np.where(d < 0, v[1:], d)
    return t, np.concatenate(([v[0]], v[0] + np.cumsum(inc)))


def counter_at(t: F64, cum: F64, at: float) -> float | None:
    """The running total at the last sample at or before ``at`` (None before the first)."""
    i = int(np.searchsorted(t, at, side="right")) - 1
    return float(cum[i]) if i >= 0 else None


def increase(t: F64, cum: F64, lo: float, hi: float) -> float:
    """Counted between ``lo`` and ``hi`` (by the last samples at or before each)."""
    b = counter_at(t, cum, hi)
    if b is None:
        return 0.0
    a = counter_at(t, cum, lo)
    return b - (a if a is not None else float(cum[0]))


def wilson(n: float, total: float, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of a share ``n / total`` (0..1)."""
    if total <= 0:
        return 0.0, 1.0
    p = min(max(n / total, 0.0), 1.0)
    denom = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _is_feedback(series: Series) -> bool:
    return any(k in ("service", "method") and "feedback" in v for k, v in series.labels)


@dataclass
class Share:
    """One version's share of routed requests over an interval."""

    count: float
    total: float

    @property
    def percent(self) -> float | None:
        return 100.0 * self.count / self.total if self.total > 0 else None

    def bounds(self) -> tuple[float, float]:
        lo, hi = wilson(self.count, self.total)
        return 100.0 * lo, 100.0 * hi


class Traffic:
    """Per-version request counters of a recording, and the shares they imply."""

    def __init__(self, db: TSDB, found: Sequence[MetricSelectors], versions: Sequence[str]) -> None:
        self.versions = tuple(versions)
        by_version: dict[str, dict[str, list[Series]]] = {v: {} for v in versions}
        for ms in found:
            for sel in ms.selectors:
                for s in db.select(sel):
                    if s.name.endswith("_count") and not _is_feedback(s):
                        bucket = by_version[ms.version].setdefault(s.name, [])
                        if all(x is not s for x in bucket):
                            bucket.append(s)
        names = set.intersection(*(set(d) for d in by_version.values())) if by_version else set()
        if not names:  # a version that never got traffic has no series: use any family seen
            names = set().union(*(set(d) for d in by_version.values())) if by_version else set()
        self.family = min(names, key=lambda n: (0 if "client" in n else 1, n)) if names else None
        self._curves: dict[str, list[tuple[F64, F64]]] = {
            v: [cumulative(s) for s in by_version[v].get(self.family or "", [])] for v in versions
        }

    @property
    def known(self) -> bool:
        return self.family is not None

    def count(self, version: str, lo: float, hi: float) -> float:
        return sum(increase(t, c, lo, hi) for t, c in self._curves[version])

    def shares(self, lo: float, hi: float) -> dict[str, Share]:
        counts = {v: self.count(v, lo, hi) for v in self.versions}
        total = sum(counts.values())
        return {v: Share(n, total) for v, n in counts.items()}

    def sample_times(self) -> F64:
        """Every distinct timestamp of the traffic counters (the scrape grid)."""
        arrays = [t for curves in self._curves.values() for t, _ in curves]
        return np.unique(np.concatenate(arrays)) if arrays else np.empty(0)

    def bracket(self, lo: float, hi: float) -> tuple[float, float]:
        """Widen (lo, hi] to scrape samples so that it holds at least one increment."""
        grid = self.sample_times()
        if grid.size == 0:
            return lo, hi
        i = int(np.searchsorted(grid, lo, side="right")) - 1
        j = int(np.searchsorted(grid, hi, side="left"))
        return (float(grid[i]) if i >= 0 else lo), (float(grid[min(j, grid.size - 1)]))
