"""What the counts engine needs to know about one predictor's latency: cell probabilities and moments.

The executor records every call twice, in the client histogram (the model's latency ``x``) and in
the server histogram (``x + overhead``). Both are functions of the same draw, so the counts engine
draws them *jointly*: the bucket bounds ``B`` and the shifted bounds ``B - overhead`` cut the line
into a refined partition; one ``multinomial(n, p)`` over its cells gives both histograms exactly
(each cell maps to one client bucket and one server bucket). Prometheus' ``le`` is ``x <= bound``,
so cell ``k`` is ``(e[k-1], e[k]]`` and ``p[k] = F(e[k]) - F(e[k-1])``.

``_sum`` is drawn given the cell counts: for each cell its conditional mean and variance of ``x``,
so the sum has the right mean and variance and stays inside what the bucket counts allow. Those
moments are exact (:mod:`simkit.sim.partial_moments`) except for the truncated normal and the
queueing model, whose come from the reference sample.

``F`` is exact for every distribution family (scipy's CDFs; empirical CDFs count ``<=``). When the
latency depends on load (``loadFactor``) or requests wait for a worker (``concurrency`` x
``replicas``), the latency is a mixture over the number of busy workers (the Erlang loss
distribution, PASTA) plus an M/G/c wait (Erlang C with the Allen–Cunneen correction); that model
is evaluated on a large fixed-seed reference sample, and the engine choice
(:mod:`simkit.sim.engine`) reports it as an approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy import special

from simkit.sim.distributions import lognormal_params, make_draw
from simkit.sim.executor_metrics import BOUNDS
from simkit.sim.partial_moments import partial_moments
from simkit.spec.scenario import Component, Distribution

Array = npt.NDArray[np.float64]
REFERENCE_SAMPLE = 1 << 16  # draws behind the conditional moments (and the queueing model's CDF)
_BOUNDS = np.asarray(BOUNDS, dtype=np.float64)


def _phi(z: Array) -> Array:
    return np.asarray(special.ndtr(z))


def family_cdf(d: Distribution | Component, x: Array) -> Array:
    """P(draw <= x) for one family, before ``factor``; exact."""
    name = d.distribution
    x = np.asarray(x, dtype=np.float64)
    if name == "lognormal":
        mu, sigma = lognormal_params(d)
        with np.errstate(divide="ignore"):
            logx = np.log(np.maximum(x, 1e-300))
        if sigma == 0:
            return (logx >= mu).astype(np.float64) * (x > 0)
        return _phi((logx - mu) / sigma) * (x > 0)
    if name == "gamma":
        if d.shape is not None and d.scale is not None:
            shape, scale = d.shape, d.scale
        else:
            assert d.mean is not None and d.cv is not None
            shape = 1.0 / d.cv**2
            scale = d.mean / shape
        return np.asarray(special.gammainc(shape, np.maximum(x, 0.0) / scale))
    if name == "exponential":
        assert d.mean is not None
        return np.asarray(1.0 - np.exp(-np.maximum(x, 0.0) / d.mean))
    if name == "constant":
        return (x >= float(d.value or 0.0)).astype(np.float64)
    if name == "uniform":
        lo, hi = float(d.low or 0.0), float(d.high or 0.0)
        if hi <= lo:
            return (x >= lo).astype(np.float64)
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    if name == "normal":
        mean, std = float(d.mean or 0.0), float(d.std or 0.0)
        # max(N(mean, std), 0): the mass below 0 sits at 0
        if std == 0:
            return (x >= max(mean, 0.0)).astype(np.float64)
        return _phi((x - mean) / std) * (x >= 0)
    if name == "empirical":
        if d.samples is not None:
            s = np.sort(np.asarray(d.samples, dtype=np.float64))
            return np.searchsorted(s, x, side="right") / len(s)
        assert d.histogram is not None
        upper = np.asarray(d.histogram.bounds, dtype=np.float64)
        lower = np.concatenate(([0.0], upper[:-1]))
        w = np.asarray(d.histogram.counts, dtype=np.float64)
        w = w / w.sum()
        inside = np.clip((x[..., None] - lower) / (upper - lower), 0.0, 1.0)
        return np.asarray((inside * w).sum(axis=-1))
    if name == "mixture":
        comps = getattr(d, "components", None) or []
        weights = np.asarray([c.weight for c in comps], dtype=np.float64)
        weights = weights / weights.sum()
        return np.asarray(sum(wi * family_cdf(c, x) for wi, c in zip(weights, comps, strict=True)))
    raise ValueError(f"unknown distribution {name!r}")  # pragma: no cover - spec validation prevents it


def distribution_cdf(d: Distribution, x: Array, scale: float = 1.0) -> Array:
    """P(scale * factor * draw <= x)."""
    return family_cdf(d, np.asarray(x, dtype=np.float64) / (scale * d.factor))


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c (``offered`` = arrival rate x mean service)."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    # Erlang B by the stable recursion, then C from B
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    rho = offered / servers
    return b / (1.0 - rho * (1.0 - b))


def busy_distribution(servers: int, offered: float) -> Array:
    """P(k other workers busy) seen by an arrival, k = 0..servers-1 (Erlang loss, truncated)."""
    k = np.arange(servers, dtype=np.float64)
    logp = k * math.log(max(offered, 1e-300)) - special.gammaln(k + 1)
    p = np.exp(logp - logp.max())
    return np.asarray(p / p.sum())


@dataclass(frozen=True)
class Queueing:
    """The load a predictor sees: arrival rate (calls/s) and workers (``replicas x concurrency``)."""

    rate: float
    servers: int
    load_factor: float

    def key(self) -> tuple[float, int, float]:
        # quantised so a slowly varying load reuses one model (3 significant digits)
        return (float(f"{self.rate:.3g}"), self.servers, self.load_factor)


@dataclass(frozen=True)
class CellModel:
    """The refined partition for one (latency distribution, overhead, load) and its moments."""

    edges: Array  # upper edges of the cells except the last (+Inf)
    p: Array  # cell probabilities (sum 1)
    client_bucket: npt.NDArray[np.intp]  # cell -> client bucket index (0..len(BOUNDS))
    server_bucket: npt.NDArray[np.intp]  # cell -> server bucket index
    mean: Array  # E[x | cell]
    var: Array  # Var[x | cell]
    low: Array  # lower edge of each cell (the sum cannot be below n * low)
    overhead: float
    approximate: bool  # True when the queueing/load model was used

    @cached_property
    def client_matrix(self) -> npt.NDArray[np.int64]:
        """cells x buckets one-hot: ``cell_counts @ client_matrix`` is the client bucket counts."""
        return _one_hot(self.client_bucket)

    @cached_property
    def server_matrix(self) -> npt.NDArray[np.int64]:
        return _one_hot(self.server_bucket)


def _one_hot(index: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
    m = np.zeros((len(index), len(BOUNDS) + 1), dtype=np.int64)
    m[np.arange(len(index)), index] = 1
    return m


def _partition(overhead: float) -> tuple[Array, npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    edges = np.unique(np.concatenate((_BOUNDS, _BOUNDS - overhead)))
    edges = edges[edges >= 0]
    # a cell (e[k-1], e[k]] falls in the first bucket whose bound is >= e[k]; the last cell is +Inf
    client = np.searchsorted(_BOUNDS, edges, side="left")
    server = np.searchsorted(_BOUNDS - overhead, edges, side="left")
    n = len(BOUNDS)
    return edges, np.append(client, n).astype(np.intp), np.append(server, n).astype(np.intp)


def cell_model(
    d: Distribution,
    *,
    overhead: float,
    scale: float = 1.0,
    queue: Queueing | None = None,
    rng: np.random.Generator,
) -> CellModel:
    """Cell probabilities and moments of ``scale * draw`` (plus the queueing model if given)."""
    edges, client, server = _partition(overhead)
    lo = np.concatenate(([0.0], edges))
    hi = np.concatenate((edges, [np.inf]))
    approximate = queue is not None
    sample: Array | None = None
    if queue is not None:
        sample = _queued_sample(d, scale, queue, rng)
        idx = np.searchsorted(edges, sample, side="left")
        p = np.bincount(idx, minlength=len(lo)).astype(np.float64) / len(sample)
    else:
        cdf = np.concatenate(([0.0], distribution_cdf(d, edges, scale), [1.0]))
        p = np.maximum(np.diff(cdf), 0.0)
        p = p / p.sum()
    moments = None if queue is not None else partial_moments(d, scale, lo, hi)
    mean = np.clip((lo + np.where(np.isfinite(hi), hi, lo)) / 2.0, 0.0, None)
    var = np.zeros_like(mean)
    if moments is not None:
        m1, m2 = moments
        with np.errstate(divide="ignore", invalid="ignore"):
            good = p > 1e-12
            mean = np.where(good, m1 / np.where(good, p, 1.0), mean)
            var = np.where(good, np.maximum(m2 / np.where(good, p, 1.0) - mean**2, 0.0), 0.0)
    else:
        if sample is None:
            sample = make_draw(d)(rng, REFERENCE_SAMPLE) * scale
            idx = np.searchsorted(edges, sample, side="left")
        counts = np.bincount(idx, minlength=len(lo)).astype(np.float64)
        sums = np.bincount(idx, weights=sample, minlength=len(lo))
        seen = counts > 0
        safe = np.where(seen, counts, 1.0)
        mean = np.where(seen, sums / safe, mean)
        # two passes: E[x^2] - E[x]^2 cancels catastrophically for narrow (or constant) cells
        squares = np.bincount(idx, weights=(sample - mean[idx]) ** 2, minlength=len(lo))
        var = np.where(seen, squares / safe, 0.0)
    # a variance at float-rounding level (a constant latency) is none: no spurious noise in _sum
    var = np.where(var <= (1e-9 * mean) ** 2, 0.0, var)
    return CellModel(edges, p, client, server, mean, var, lo, overhead, approximate)


def _queued_sample(d: Distribution, scale: float, queue: Queueing, rng: np.random.Generator) -> Array:
    """Latency = service x (1 + loadFactor x busy/c) + wait, on a reference sample."""
    n = REFERENCE_SAMPLE
    service = make_draw(d)(rng, n) * scale
    c = max(queue.servers, 1)
    mean_s = float(service.mean()) if n else 0.0
    offered = min(queue.rate * mean_s, c * 0.999)
    out = service
    if queue.load_factor > 0:
        busy = rng.choice(c, size=n, p=busy_distribution(c, offered)) + 1  # this request included
        out = service * (1.0 + queue.load_factor * np.minimum(busy, c) / c)
    p_wait = erlang_c(c, offered)
    if p_wait > 0 and mean_s > 0:
        cv2 = float(service.var()) / mean_s**2
        mean_wait = mean_s * (1.0 + cv2) / 2.0 / (c * (1.0 - offered / c))  # Allen–Cunneen, given waiting
        waits = rng.exponential(mean_wait, n) * (rng.random(n) < p_wait)
        out = out + waits
    return np.asarray(out)


def expected_wait_ratio(servers: int, rate: float, mean_service: float) -> tuple[float, float]:
    """(P(wait), E[wait] / E[service]) of M/M/c at this load: how much queueing changes latency."""
    c = max(servers, 1)
    offered = rate * mean_service
    if offered >= c:
        return 1.0, math.inf
    pw = erlang_c(c, offered)
    return pw, pw / (c * (1.0 - offered / c))
