"""Counterfactual replay: thin the recorded counters to what a policy would have routed.

The replay method of perf-anchors.md §3.6 (Li et al., WSDM 2011) applied to rollouts: if routing
is per request and independent, the requests a version would have received under a policy weight
w ≤ the recorded weight w_log are a binomial thinning of the recorded ones with q = w / w_log.
Each scrape increment of each version's counters is thinned with the policy's weights averaged
over the increment's time span:

- histograms bucket by bucket, consistently: the per-bucket (non-cumulative) increments are
  thinned independently, then summed back up, so ``_bucket`` stays monotone in ``le`` and
  ``_count`` equals the ``+Inf`` bucket;
- ``_sum`` is scaled by the kept fraction of ``_count`` (the mean latency is kept);
- other counters of the version (``*_total``) are thinned binomially, rounded values only.

Where the policy's weight lies inside the recorded share's 99.9 % interval the increment is kept
as recorded (exact); where it lies above, nothing can be thinned and the increment is kept but
marked ``beyond-record`` (the extra traffic's outcomes were never observed). Series not tied to
one version (matched by several versions' selectors, or by none) are copied unchanged. The
derived TSDB grows with the replay clock, because the weights come from the policy's decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from simkit.replay.selectors import MetricSelectors
from simkit.replay.traffic import Share, Traffic
from simkit.tsdb import TSDB, Labels, Series

WeightsOver = Callable[[float, float], Mapping[str, float]]  # time-averaged policy weights over (lo, hi]
_ORDER = {"recorded": 0, "thinned": 1, "beyond-record": 2}


@dataclass
class _Group:
    """Series thinned together: one histogram child (buckets by le, count, sum) or one counter."""

    version: str
    buckets: list[Series] = field(default_factory=list)  # sorted by le, +Inf last
    count: Series | None = None
    total: Series | None = None  # _sum
    counters: list[Series] = field(default_factory=list)  # plain counters, thinned one by one
    pos: int = 0
    prev: dict[int, float] = field(default_factory=dict)  # id(series) -> last recorded value
    out: dict[int, float] = field(default_factory=dict)  # id(series) -> last derived value
    derived: dict[int, Series] = field(default_factory=dict)

    def members(self) -> list[Series]:
        return [
            *self.buckets,
            *([self.count] if self.count else []),
            *([self.total] if self.total else []),
            *self.counters,
        ]


def _le(s: Series) -> float:
    le = dict(s.labels).get("le", "+Inf")
    return float("inf") if le in ("+Inf", "Inf") else float(le)


def _histogram_key(s: Series) -> tuple[str, Labels] | None:
    for suffix in ("_bucket", "_count", "_sum"):
        if s.name.endswith(suffix):
            rest = tuple((k, v) for k, v in s.labels if k not in ("__name__", "le"))
            return s.name[: -len(suffix)], rest
    return None


class Thinner:
    """Builds ``derived``: the recording as a policy's weights would have thinned it."""

    def __init__(
        self,
        db: TSDB,
        found: Sequence[MetricSelectors],
        traffic: Traffic,
        versions: Sequence[str],
        rng: np.random.Generator,
    ) -> None:
        self.rng = rng
        self.traffic = traffic
        self.derived = TSDB()
        self.derived.types.update(db.types)
        owner: dict[int, set[str]] = {}
        for ms in found:
            for sel in ms.selectors:
                for s in db.select(sel):
                    owner.setdefault(id(s), set()).add(ms.version)
        groups: dict[tuple[str, str, Labels], _Group] = {}
        for s in db:
            versions_of = owner.get(id(s), set())
            if len(versions_of) != 1 or not traffic.known:
                target = self.derived.get_or_create(s.labels)
                t, v = s.arrays()
                for ti, vi in zip(t.tolist(), v.tolist(), strict=True):
                    target.append(ti, vi)
                continue
            version = next(iter(versions_of))
            hkey = _histogram_key(s)
            if hkey is None:
                groups[(version, s.name, s.labels)] = _Group(version, counters=[s])
                continue
            g = groups.setdefault((version, *hkey), _Group(version))
            if s.name.endswith("_bucket"):
                g.buckets.append(s)
            elif s.name.endswith("_count"):
                g.count = s
            else:
                g.total = s
        self.groups: list[_Group] = []
        for g in groups.values():
            g.buckets.sort(key=_le)
            times = [m.arrays()[0] for m in g.members()]
            if any(t.shape != times[0].shape or not np.array_equal(t, times[0]) for t in times[1:]):
                # members scraped at different times: thin each as a plain counter
                parts = [_Group(g.version, counters=[m]) for m in g.members()]
                self.groups.extend(parts)
            else:
                self.groups.append(g)
        for g in self.groups:
            for m in g.members():
                g.derived[id(m)] = self.derived.get_or_create(m.labels)
        self.states: list[tuple[float, str]] = []  # (increment end, state), in time order per group
        self._shares: dict[tuple[float, float], dict[str, Share]] = {}
        self._weights: WeightsOver | None = None
        self._exact_until: float | None = None

    # -- the policy's q per increment -------------------------------------------------------------
    def _q(self, version: str, lo: float, hi: float) -> tuple[float, str]:
        assert self._weights is not None
        if self._exact_until is not None and hi <= self._exact_until:
            return 1.0, "recorded"
        shares = self._shares.get((lo, hi))
        if shares is None:
            shares = self._shares[(lo, hi)] = self.traffic.shares(lo, hi)
        share = shares[version]
        p = share.percent
        if p is None:
            return 1.0, "recorded"
        w = float(self._weights(lo, hi).get(version, 0.0))
        low, high = share.bounds()
        if w > high + 1e-9:
            return 1.0, "beyond-record"
        if w >= low - 1e-9 or p <= 0:
            return 1.0, "recorded"
        return min(1.0, w / p), "thinned"

    def advance(self, until: float, weights_over: WeightsOver) -> None:
        """Extend ``derived`` with every recorded sample at or before ``until``."""
        self._weights = weights_over
        if self._exact_until is None:
            self._exact_until = until  # history before the replay starts is kept as recorded
        for g in self.groups:
            self._advance_group(g, until)

    def _advance_group(self, g: _Group, until: float) -> None:
        members = g.members()
        t = members[0].arrays()[0]
        values = [m.arrays()[1] for m in members]
        end = int(np.searchsorted(t, until, side="right"))
        for k in range(g.pos, end):
            now = [float(v[k]) for v in values]
            if k == 0:
                for m, x in zip(members, now, strict=True):
                    g.prev[id(m)], g.out[id(m)] = x, x
                    g.derived[id(m)].append(float(t[k]), x)
                continue
            q, state = self._q(g.version, float(t[k - 1]), float(t[k]))
            if state != "recorded":
                self.states.append((float(t[k]), state))
            inc = [x - g.prev[id(m)] if x >= g.prev[id(m)] else x for m, x in zip(members, now, strict=True)]
            new = self._thin(g, inc, q) if q < 1.0 else inc
            for m, x, d in zip(members, now, new, strict=True):
                g.prev[id(m)] = x
                g.out[id(m)] += d
                g.derived[id(m)].append(float(t[k]), g.out[id(m)])
        g.pos = max(g.pos, end)

    def _thin(self, g: _Group, inc: list[float], q: float) -> list[float]:
        rng = self.rng
        out = list(inc)
        nb = len(g.buckets)
        if nb:
            cum = np.maximum.accumulate(np.maximum(np.asarray(inc[:nb]), 0.0))
            per = np.diff(np.concatenate(([0.0], cum)))
            kept = np.cumsum(rng.binomial(np.rint(per).astype(np.int64), q)).astype(float)
            out[:nb] = kept.tolist()
        i = nb
        if g.count is not None:
            c = max(inc[i], 0.0)
            if nb and _le(g.buckets[-1]) == float("inf"):
                kept_count = out[nb - 1]
            else:
                base = out[nb - 1] if nb else 0.0
                below = inc[nb - 1] if nb else 0.0
                kept_count = base + float(rng.binomial(int(round(max(c - below, 0.0))), q))
            out[i] = kept_count
            if g.total is not None:
                out[i + 1] = inc[i + 1] * (kept_count / c) if c > 0 else 0.0
        for j, m in enumerate(g.counters):
            d = inc[len(inc) - len(g.counters) + j]
            ok = float(d).is_integer() and d >= 0
            out[len(inc) - len(g.counters) + j] = float(rng.binomial(int(d), q)) if ok else d * q
            del m
        return out

    def state_between(self, lo: float, hi: float) -> str:
        """The worst state of the increments ending in (lo, hi]: recorded < thinned < beyond-record."""
        worst = "recorded"
        for end, state in self.states:
            if lo < end <= hi and _ORDER[state] > _ORDER[worst]:
                worst = state
        return worst
