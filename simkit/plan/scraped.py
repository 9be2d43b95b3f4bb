"""What Prometheus holds of the executor series a plan's policy reads, for many paths at once.

A policy does not see the counts a version served: it sees ``increase(...[${elapsedTime}s])``
over the samples Prometheus scraped, summed over pods. Three things separate the two, and
``plan --verify`` measured each (issue 15):

* **scrape lag**: at an iteration only the samples scraped so far count, and the first sample
  in the window is a baseline, not an increment (at the first look after 60 s with 30-s scrapes,
  half the interval's requests are not in the increase yet);
* **series that appear late**: a per-pod ``code="500"`` (or feedback) child exists only after its
  first observation, so the errors before its first scrape are not counted, and what is counted
  is extrapolated by Prometheus' rule (:func:`simkit.promql.rangefuncs.extrapolate_many`, the same
  arithmetic as the engine's, over arrays);
* **feedback delay**: a feedback call lands at its request's time plus the delay, in whichever
  scrape interval that falls.

So the paths run in lockstep on the simulation's own timeline (the world's scrape instants from
its first load, the iterations every ``intervalSeconds`` from 0, scrapes before the iteration at
the same instant) and per segment between instants each path draws its versions' calls: Poisson
requests split round-robin over the pods, binomial errors per pod, a normal latency sum per pod
and code, binomial feedback per success spread over the coming scrape intervals by the delay
(one multinomial per segment). Each path then gets its metric values and its policy's own
``decide``. Numpy carries the paths; only ``decide`` runs per path.

The client histogram's buckets are drawn too (a multinomial per pod and scrape), so the p95 is
``histogram_quantile`` of noisy bucket counts and the cumulative bucket indicators
(``latency-bucket-le-0.05``: the ``anytime`` policy's latency test) are their ``increase()``.
Left out: the controller's iteration delay, error codes beyond one per version, and the p95's
noise in a window that does not start at the experiment's start (the p95 of the true bucket
shares is reported there).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from simkit.plan.model import Arm, PathOutcome, metric_refs
from simkit.promql.aggregate import bucket_quantile_many
from simkit.promql.rangefuncs import extrapolate_many
from simkit.sim.executor_metrics import BOUNDS
from simkit.strategies.base import Observation, Plan, Strategy

U_GRID = (np.arange(32) + 0.5) / 32  # a request's position inside its segment, for the landing law


@dataclass(frozen=True)
class Timeline:
    """The simulation's instants, seconds from the experiment start."""

    begin: float  # the first load (the world's ``begin``)
    scrapes: tuple[float, ...]  # every scrape instant from ``begin`` to the last iteration
    pods: Mapping[str, int]  # replicas per version


def iteration_time(plan: Plan, i: int) -> float:
    return (i - 1) * plan.interval_seconds


class Family:
    """One counter per (path, pod) of one version: its running value, its value at each scrape,
    and the scrape at which the child series first exists (``born``; ``K`` for never)."""

    def __init__(self, paths: int, pods: int, scrapes: int, born_from: Family | None = None) -> None:
        self.now = np.zeros((paths, pods))
        self.samples = np.zeros((paths, pods, scrapes))
        self.k = scrapes
        self.born: np.ndarray = (
            np.full((paths, pods), scrapes, dtype=np.int64) if born_from is None else born_from.born
        )
        self.owns_birth = born_from is None

    def scrape(self, k: int) -> None:
        self.samples[:, :, k] = self.now
        if self.owns_birth:
            self.born[(self.born == self.k) & (self.now > 0)] = k

    def window(self, k_lo: int, k_hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per (path, pod): the first sample's scrape in the window ``k_lo..k_hi``, the number of
        samples there, and whether the child has the two that ``increase()`` needs."""
        first = np.maximum(self.born, k_lo)
        n = k_hi - first + 1
        present = n >= 2
        return np.where(present, first, k_hi), np.maximum(n, 2), present

    def increase(self, k_lo: int, k_hi: int, t: np.ndarray, lo_ms: int, hi_ms: int) -> np.ndarray:
        """``increase()`` per (path, pod) over the scrapes ``k_lo..k_hi`` in the window; NaN where
        the child has fewer than two samples there (Prometheus returns no series)."""
        first, n, present = self.window(k_lo, k_hi)
        first_v = np.take_along_axis(self.samples, first[..., None], axis=2)[..., 0]
        last_v = self.samples[:, :, k_hi]
        out = extrapolate_many(
            first_t=t[first],
            last_t=int(t[k_hi]),
            first_v=first_v,
            result=last_v - first_v,
            n=n,
            range_start=lo_ms,
            range_end=hi_ms,
        )
        return np.where(present, out, np.nan)


def _total(x: np.ndarray) -> np.ndarray:
    """``sum(...)`` over the pods: NaN (no sample) when no pod has a series."""
    return np.where(np.isnan(x).all(axis=1), np.nan, np.nansum(x, axis=1))


class VersionSeries:
    """One version's executor series, per pod: server predictions by code (``ok``, ``err``: the
    request and error counts), the client histogram (``calls``, its latency sum and buckets: mean
    latency and p95) and feedback calls. Requests are drawn per segment (their rate follows the
    weights); what they became (codes, buckets, latency) is drawn at the scrape that samples them,
    which is the same law and one draw per scrape instead of per segment."""

    def __init__(self, arm: Arm, paths: int, pods: int, scrapes: int, first_scrape: int) -> None:
        self.arm, self.pods = arm, pods
        self.ok = Family(paths, pods, scrapes)
        self.err = Family(paths, pods, scrapes)
        self.calls = Family(paths, pods, scrapes)
        self.lat_sum = Family(paths, pods, scrapes, born_from=self.calls)
        self.fb = Family(paths, pods, scrapes)
        self.unscraped = np.zeros((paths, pods))  # predictions since the last scrape
        self.pending = np.zeros((paths, scrapes))  # feedback landing before scrape k
        self.served = np.zeros(paths)  # raw predictions (the exposure)
        shares = np.array(arm.buckets if arm.buckets else (1.0,))
        self.nb = int(np.flatnonzero(shares)[-1]) + 1 if shares.any() else 1  # buckets in use
        self.shares = shares[: self.nb] / shares[: self.nb].sum()
        self.means = np.array(arm.bucket_means[: self.nb] if arm.bucket_means else (arm.latency_mean,))
        self.vars = np.array(arm.bucket_vars[: self.nb] if arm.bucket_vars else (arm.latency_sd**2,))
        # the client buckets at each child's first sample in the window, and at the last scrape
        self.first_scrape = first_scrape
        self.buckets = np.zeros((paths, pods, self.nb))
        self.b_first = np.zeros((paths, pods, self.nb))
        self.b_first_set = np.zeros((paths, pods), dtype=bool)

    def families(self) -> tuple[Family, ...]:
        return (self.ok, self.err, self.calls, self.lat_sum, self.fb)

    def _split(self, n: np.ndarray) -> np.ndarray:
        """Round-robin over the pods: each gets ``n // pods`` and the first ``n % pods`` one more."""
        j = np.arange(self.pods)
        return (n[:, None] + (self.pods - 1 - j)) // self.pods

    def serve(
        self, expected: np.ndarray, landing: np.ndarray, k_next: int, rng: np.random.Generator | None
    ) -> None:
        """One segment's predictions (``expected`` per path), drawn (``rng``) or at their means; their
        feedback calls (per success, ``Binomial(n, q (1 - p))``) queued by the landing law."""
        a = self.arm
        q = a.feedback * (1 - a.error_rate)
        if rng is None:
            n = expected
            self.unscraped += n[:, None] / self.pods
            landed = (n * q)[:, None] * landing[None, :]
        else:
            n = rng.poisson(expected)
            self.unscraped += self._split(n)
            fb = rng.binomial(n, q) if q > 0 else np.zeros(len(n), dtype=np.int64)
            landed = rng.multinomial(fb, landing) if len(landing) > 1 else fb[:, None] * 1.0
        self.served += n
        if q > 0:
            m = min(landed.shape[1], self.pending.shape[1] - k_next)
            self.pending[:, k_next : k_next + m] += landed[:, :m]

    def scrape(self, k: int, rng: np.random.Generator | None) -> None:
        a, n = self.arm, self.unscraped
        if rng is None:
            err = n * a.error_rate
            buckets = n[..., None] * self.shares
            lat = buckets @ self.means
            fb = self.pending[:, k][:, None] / self.pods
        else:
            whole = n.astype(np.int64)
            err = rng.binomial(whole, a.error_rate).astype(np.float64)
            buckets = rng.multinomial(whole, self.shares).astype(np.float64) if self.nb > 1 else n[..., None]
            spread = np.sqrt(buckets @ self.vars)
            lat = buckets @ self.means + spread * rng.standard_normal(n.shape)
            fb = self._split(self.pending[:, k].astype(np.int64)).astype(np.float64)
        self.ok.now += n - err
        self.err.now += err
        self.calls.now += n
        self.lat_sum.now += lat
        self.fb.now += fb
        self.buckets += buckets
        self.unscraped = np.zeros_like(n)
        for f in self.families():
            f.scrape(k)
        if k >= self.first_scrape:  # the child's first sample inside the windows
            fresh = ~self.b_first_set & (self.calls.born <= k)
            self.b_first[fresh] = self.buckets[fresh]
            self.b_first_set |= fresh

    def values(self, k_lo: int, k_hi: int, t: np.ndarray, lo_ms: int, hi_ms: int) -> dict[str, np.ndarray]:
        """The bench convention's metrics (the part after ``namespace/``), per path; NaN = none."""
        ok, err, calls, lat, fb = (f.increase(k_lo, k_hi, t, lo_ms, hi_ms) for f in self.families())
        requests = _total(np.where(np.isnan(ok), err, np.nansum([ok, err], axis=0)))
        errors = np.nan_to_num(_total(err))  # ``or on() vector(0)``
        feedback = np.nan_to_num(_total(fb))
        with np.errstate(invalid="ignore", divide="ignore"):
            per_request = np.where(requests > 0, 1.0 / np.where(requests > 0, requests, 1.0), np.nan)
            mean_latency = _total(lat) / _total(calls)
        out = {
            "request-count": np.nan_to_num(requests),
            "error-count": errors,
            "feedback-count": feedback,
            "error-rate": errors * per_request,
            "engagement-rate": feedback * per_request,
            "mean-latency": mean_latency,
        }
        if k_lo != self.first_scrape:  # bucket snapshots are kept for windows from the start only
            out["95th-percentile-tail-latency"] = np.where(
                np.isnan(_total(calls)), np.nan, self.arm.latency_p95
            )
            return out
        cumulative = self._bucket_increase(k_lo, k_hi, t, lo_ms, hi_ms)
        bounds = [*BOUNDS[: cumulative.shape[1] - 1], math.inf]
        out["95th-percentile-tail-latency"] = bucket_quantile_many(0.95, bounds, np.nan_to_num(cumulative))
        for bound, column in zip(bounds, cumulative.T, strict=True):
            out[f"latency-bucket-le-{'inf' if math.isinf(bound) else f'{bound:g}'}"] = np.nan_to_num(column)
        for bound in BOUNDS[cumulative.shape[1] - 1 :]:  # buckets above every latency: the total
            out[f"latency-bucket-le-{bound:g}"] = np.nan_to_num(cumulative[:, -1])
        return out

    def _bucket_increase(self, k_lo: int, k_hi: int, t: np.ndarray, lo_ms: int, hi_ms: int) -> np.ndarray:
        """``sum(increase(..._bucket[w])) by (le)`` per path, per bucket bound (BOUNDS in use, then
        +Inf): every pod's cumulative bucket child from its first sample in the window (the
        children of one histogram are born together) to the last scrape, extrapolated one by one
        as Prometheus does (a sparse bucket's zero point differs from its count's), summed over
        the pods; NaN where no pod has a series."""
        first, n, present = self.calls.window(k_lo, k_hi)
        lo = np.cumsum(self.b_first, axis=2)
        hi = np.cumsum(self.buckets, axis=2)
        inc = extrapolate_many(
            first_t=t[first][..., None],
            last_t=int(t[k_hi]),
            first_v=lo,
            result=hi - lo,
            n=n[..., None],
            range_start=lo_ms,
            range_end=hi_ms,
        )
        inc = np.where((present & self.b_first_set)[..., None], inc, np.nan)
        if self.nb <= len(BOUNDS):  # +Inf counts what the last bucket in use counts
            inc = np.concatenate([inc, inc[..., -1:]], axis=2)
        return np.where(np.isnan(inc).all(axis=1), np.nan, np.nansum(inc, axis=1))


def landing_law(
    delays: np.ndarray | None, start: float, end: float, scrapes: np.ndarray, k_next: int
) -> np.ndarray:
    """P(a feedback call for a request in ``[start, end)`` lands by scrape ``k_next + j``, not
    before), for ``j = 0, 1, ...``: the request uniform in the segment plus the delay (its sorted
    sample ``delays``; None: no delay)."""
    if delays is None or len(scrapes) <= k_next:
        return np.ones(1)
    x = start + U_GRID[:, None] * (end - start)  # (u, 1)
    edges = scrapes[k_next:]
    cdf = np.searchsorted(delays, edges[None, :] - x, side="right").mean(axis=0) / len(delays)
    p = np.diff(np.concatenate([[0.0], cdf]))
    p[-1] += max(0.0, 1.0 - p.sum())  # what lands after the last scrape: never observed
    cut = int(np.searchsorted(np.cumsum(p), 1 - 1e-9)) + 1
    p = p[:cut]
    return p / p.sum()


def run_paths(
    *,
    plan: Plan,
    strategy: Strategy,
    arms: Mapping[str, Arm],
    timeline: Timeline,
    qps: float,
    weights: tuple[tuple[str, int], ...],
    paths: int,
    rng: np.random.Generator,
    milliseconds: Callable[[str], bool],
    noise: bool = True,
    schedule: list[int] | None = None,
) -> list[PathOutcome]:
    """``paths`` rollouts of the policy on what Prometheus would hold (``noise=False``: one path
    at the expected counts, the planned ramp; ``schedule`` then collects the candidate's weight in
    the interval before each iteration)."""
    versions = plan.versions
    candidate = versions[1]
    scrapes = np.array(timeline.scrapes)
    t_ms = np.round(scrapes * 1000).astype(np.int64)
    first_scrape = int(np.searchsorted(t_ms, 0, side="left"))  # windows start at the experiment's start
    series = {
        v: VersionSeries(arms[v], paths, timeline.pods[v], len(scrapes), first_scrape) for v in versions
    }
    current = np.array([[dict(weights).get(v, 0) for v in versions]] * paths, dtype=np.float64)
    states: list[Mapping[str, object]] = [{} for _ in range(paths)]
    outcome: list[PathOutcome | None] = [None] * paths
    metrics = metric_refs(plan)
    kinds = {m: m.rsplit("/", 1)[-1] for m in metrics}
    latency = ("mean-latency", "95th-percentile-tail-latency")
    scale = {m: 1000.0 if milliseconds(m) and kinds[m] in latency else 1.0 for m in metrics}
    draw = rng if noise else None
    t, k = timeline.begin, 0
    for i in range(1, plan.iterations + 1):
        at = iteration_time(plan, i)
        while True:  # the segments up to the iteration, scrapes at an instant before it
            nxt = min(scrapes[k] if k < len(scrapes) else np.inf, at)
            if nxt > t:
                for j, v in enumerate(versions):
                    law = landing_law(arms[v].delays, t, nxt, scrapes, k)
                    series[v].serve(qps * (nxt - t) * current[:, j] / 100, law, k, draw)
                t = nxt
            if k < len(scrapes) and scrapes[k] <= at:
                for v in versions:
                    series[v].scrape(k, draw)
                k += 1
                continue
            break
        if schedule is not None:
            schedule.append(int(current[0, 1]))
        elapsed = max(1, int(np.floor(at)))
        lo_ms, hi_ms = round((at - elapsed) * 1000), round(at * 1000)
        k_lo, k_hi = int(np.searchsorted(t_ms, lo_ms, side="left")), k - 1
        values = {v: series[v].values(k_lo, k_hi, t_ms, lo_ms, hi_ms) for v in versions} if k_hi >= 0 else {}
        columns = {
            m: {v: _column(values.get(v, {}), kinds[m], scale[m], paths) for v in versions} for m in metrics
        }
        for p in range(paths):
            if outcome[p] is not None:
                continue
            obs = Observation(
                iteration=i,
                elapsed=float(elapsed),
                metrics={m: {v: col[p] for v, col in by_v.items()} for m, by_v in columns.items()},
                current_weights=tuple((v, int(current[p, j])) for j, v in enumerate(versions)),
                state=states[p],
            )
            d = strategy.decide(obs, rng)
            states[p] = d.state
            exposure = float(series[candidate].served[p])
            if d.verdict == "rollback":
                outcome[p] = PathOutcome(i, None, exposure)
                continue
            if d.weights is not None:
                current[p] = [int(d.weights.get(v, 0)) for v in versions]
            if d.verdict == "promote":
                outcome[p] = PathOutcome(None, i, exposure)
        if all(o is not None for o in outcome):
            break
    served = series[candidate].served
    return [o if o is not None else PathOutcome(None, None, float(served[p])) for p, o in enumerate(outcome)]


def _column(values: Mapping[str, np.ndarray], kind: str, scale: float, paths: int) -> list[float | None]:
    """One metric of one version for every path, as the policy reads it (None: no sample)."""
    arr = values.get(kind)
    if arr is None:
        return [None] * paths
    return [None if x != x else x for x in (arr * scale).tolist()]  # x != x: NaN
