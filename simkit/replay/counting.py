"""What ``simkit calibrate`` counts a recording with: each version's predictor and the matchers
selecting its series (:func:`identify`), counts over the scrape span from the raw counter values
(:class:`Counter`: a series present at the first scrape counts from its value there, one born
later from zero), and the recorded scrape instants the simulated windows follow."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from simkit.errors import DataError
from simkit.replay.selectors import MetricSelectors
from simkit.replay.traffic import counter_at, cumulative
from simkit.tsdb import TSDB, Matcher, Series

IDENTITY_LABELS = (
    ("kubernetes_namespace", "namespace"),
    ("seldon_deployment_id", "deployment_name"),
    ("predictor_name",),
)


@dataclass(frozen=True)
class Identity:
    """The predictor a version's series belong to, and the matchers that select them."""

    namespace: str
    deployment: str
    predictor: str
    matchers: tuple[Matcher, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.deployment}/{self.predictor}"


def _identity(best: tuple[tuple[str, str], ...]) -> Identity:
    return Identity(best[0][1], best[1][1], best[2][1], tuple(Matcher(k, "=", v) for k, v in best))


def identify(
    db: TSDB, found: Sequence[MetricSelectors], versions: Sequence[str], source: str = "calibrate"
) -> dict[str, Identity]:
    """Each version's predictor, from the labels of the series its Metric selectors match, else
    (a version without any series) from the selectors' own equality matchers."""
    out: dict[str, Identity] = {}
    for version in versions:
        tally: dict[tuple[tuple[str, str], ...], int] = {}
        fallback: dict[str, str] = {}
        for ms in (m for m in found if m.version == version):
            for sel in ms.selectors:
                for m in sel:
                    if m.op == "=" and m.name != "__name__":
                        fallback.setdefault(m.name, m.value)
                for s in db.select(sel):
                    ident = []
                    for names in IDENTITY_LABELS:
                        name = next((n for n in names if n in s.label_map), None)
                        if name is not None:
                            ident.append((name, s.label_map[name]))
                    if len(ident) == len(IDENTITY_LABELS):
                        tally[tuple(ident)] = tally.get(tuple(ident), 0) + 1
        if tally:
            out[version] = _identity(max(sorted(tally), key=lambda k: tally[k]))
            continue
        ident = [(n, fallback[n]) for names in IDENTITY_LABELS for n in names[:1] if n in fallback]
        if len(ident) != len(IDENTITY_LABELS):
            raise DataError(
                f"{source}: version {version} has no Seldon executor series in the recording and its "
                "Metric queries do not name its namespace, deployment and predictor_name"
            )
        out[version] = _identity(tuple(ident))
    return out


class Counter:
    """Counts over the recording's scrape span from raw counter values (see the module docstring)."""

    def __init__(self, db: TSDB, first: float, step: float) -> None:
        self.db = db
        self.first = first
        self.step = step

    def select(self, name: str, ident: Identity, services: set[str] | None = None) -> list[Series]:
        found = self.db.select([Matcher("__name__", "=", name), *ident.matchers])
        return [s for s in found if services is None or s.label_map.get("service", "") in services]

    def inc(self, s: Series, lo: float, hi: float) -> float:
        t, c = cumulative(s)
        if not t.size:
            return 0.0
        b = counter_at(t, c, hi)
        if b is None:
            return 0.0
        a = counter_at(t, c, lo)
        if a is None:  # lo is before the series' first sample: born later (from 0) or present from the start
            a = 0.0 if t[0] > self.first + 0.5 * self.step else float(c[0])
        return b - a

    def total(self, series: Sequence[Series], lo: float, hi: float) -> float:
        return sum(self.inc(s, lo, hi) for s in series)


def scrape_span(db: TSDB, start: float, end: float) -> tuple[float, float]:
    """The first and last sample instants inside [start, end] over every series."""
    firsts, lasts = [], []
    for s in db:
        t, _ = s.arrays()
        t = t[(t >= start) & (t <= end)]
        if t.size:
            firsts.append(float(t[0]))
            lasts.append(float(t[-1]))
    if not firsts:
        raise DataError(f"calibrate: no samples between {start:.3f} and {end:.3f}; nothing to calibrate")
    return min(firsts), max(lasts)


def scrape_grid(series: Sequence[Series], lo: float, hi: float, step: float) -> list[float]:
    """The recorded scrape instants in [lo, hi] (samples closer than half a step are one scrape:
    targets scraped a few ms apart), with ``lo`` and ``hi`` as the ends; window edges on these
    instants keep every scrape's increment in its own window however the scrapes jitter."""
    times = sorted({float(t) for s in series for t in s.arrays()[0].tolist() if lo <= t <= hi})
    grid = [lo]
    for t in times:
        if t >= grid[-1] + 0.5 * step:
            grid.append(t)
    if hi - grid[-1] >= 0.5 * step:
        grid.append(hi)
    else:
        grid[-1] = hi
    return grid if len(grid) > 1 else window_edges(lo, hi, step)


def window_edges(lo: float, hi: float, step: float) -> list[float]:
    """lo, lo + step, ... and hi itself, by counting steps (a float ``arange`` end bound at Unix
    magnitudes drops the last edge when ``hi`` falls on a step)."""
    n = max(1, int(math.floor((hi - lo) / step + 1e-6)))
    edges = [lo + i * step for i in range(n + 1)]
    if hi - edges[-1] > 1e-6 * step:
        edges.append(hi)
    else:
        edges[-1] = hi
    return edges
