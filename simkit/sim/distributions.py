"""Random durations for the sim: latency, feedback delay, error draws, routing draws.

Draws come from numpy in batches (perf-anchors §3.2: pre-drawing variates in numpy is faster
than per-request ``random`` calls) and are handed out one at a time as Python floats. Each
sampler owns its own ``numpy.random.Generator`` spawned from the scenario seed, so adding a
predictor or an event never shifts another component's random stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from simkit.spec.scenario import Component, Distribution

BATCH = 2048
Draw = Callable[[np.random.Generator, int], npt.NDArray[np.float64]]

_Z99 = 2.3263478740408408  # scipy.stats.norm.ppf(0.99), written out: importing scipy.stats costs ~0.7 s


def make_draw(d: Distribution | Component) -> Draw:
    """A vectorised drawing function for a distribution spec (positive durations, seconds)."""
    factor = getattr(d, "factor", 1.0)
    base = _base_draw(d)
    if factor == 1.0:
        return base
    return lambda rng, n: base(rng, n) * factor


def _base_draw(d: Distribution | Component) -> Draw:
    name = d.distribution
    if name == "lognormal":
        mu, sigma = lognormal_params(d)
        return lambda rng, n: rng.lognormal(mu, sigma, n)
    if name == "gamma":
        if d.shape is not None and d.scale is not None:
            shape, scale = d.shape, d.scale
        else:
            assert d.mean is not None and d.cv is not None
            shape = 1.0 / (d.cv**2)
            scale = d.mean / shape
        return lambda rng, n: rng.gamma(shape, scale, n)
    if name == "exponential":
        assert d.mean is not None
        mean = d.mean
        return lambda rng, n: rng.exponential(mean, n)
    if name == "constant":
        value = float(d.value or 0.0)
        return lambda rng, n: np.full(n, value)
    if name == "uniform":
        lo, hi = float(d.low or 0.0), float(d.high or 0.0)
        return lambda rng, n: rng.uniform(lo, hi, n)
    if name == "normal":
        mean, std = float(d.mean or 0.0), float(d.std or 0.0)
        return lambda rng, n: np.maximum(rng.normal(mean, std, n), 0.0)
    if name == "empirical":
        if d.samples is not None:
            samples = np.asarray(d.samples, dtype=np.float64)
            return lambda rng, n: samples[rng.integers(0, len(samples), n)]
        assert d.histogram is not None
        upper = np.asarray(d.histogram.bounds, dtype=np.float64)
        lower = np.concatenate(([0.0], upper[:-1]))
        p = np.asarray(d.histogram.counts, dtype=np.float64)
        p = p / p.sum()

        def hist_draw(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
            idx = rng.choice(len(p), size=n, p=p)
            return lower[idx] + (upper[idx] - lower[idx]) * rng.random(n)

        return hist_draw
    if name == "mixture":
        comps = getattr(d, "components", None) or []
        weights = np.asarray([c.weight for c in comps], dtype=np.float64)
        weights /= weights.sum()
        draws = [make_draw(c) for c in comps]

        def mix_draw(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
            which = rng.choice(len(draws), size=n, p=weights)
            out = np.empty(n)
            for i, draw in enumerate(draws):
                mask = which == i
                k = int(mask.sum())
                if k:
                    out[mask] = draw(rng, k)
            return out

        return mix_draw
    raise ValueError(f"unknown distribution {name!r}")  # pragma: no cover - spec validation prevents it


def lognormal_params(d: Distribution | Component) -> tuple[float, float]:
    """(mu, sigma) of log-seconds from median+p99, mu+sigma, or mean+cv."""
    if d.median is not None and d.p99 is not None:
        mu = math.log(d.median)
        return mu, (math.log(d.p99) - mu) / _Z99
    if d.mu is not None and d.sigma is not None:
        return d.mu, d.sigma
    assert d.mean is not None and d.cv is not None
    sigma2 = math.log(1.0 + d.cv**2)
    return math.log(d.mean) - sigma2 / 2.0, math.sqrt(sigma2)


def cdf(
    d: Distribution, x: npt.NDArray[np.float64], rng: np.random.Generator | None = None, n_mc: int = 200_000
) -> npt.NDArray[np.float64]:
    """P(draw <= x): exact for the parametric families, Monte Carlo for the rest (ground truth)."""
    f = d.factor
    name = d.distribution
    xs = np.asarray(x, dtype=np.float64) / f
    if name == "lognormal":
        mu, sigma = lognormal_params(d)
        from scipy import stats  # ground truth only (bench): not worth importing for every run

        with np.errstate(divide="ignore"):
            return np.asarray(stats.norm.cdf((np.log(np.maximum(xs, 1e-300)) - mu) / sigma) * (xs > 0))
    if name == "exponential":
        assert d.mean is not None
        return np.asarray(1.0 - np.exp(-np.maximum(xs, 0) / d.mean))
    if name == "constant":
        return np.asarray((xs >= float(d.value or 0.0)).astype(float))
    gen = rng if rng is not None else np.random.default_rng(0)
    sample = np.sort(make_draw(d)(gen, n_mc) / f)
    return np.asarray(np.searchsorted(sample, xs, side="right") / n_mc)


def mean(d: Distribution, rng: np.random.Generator | None = None) -> float:
    """Expected value of a draw (exact where cheap, Monte Carlo otherwise)."""
    name = d.distribution
    if name == "lognormal":
        mu, sigma = lognormal_params(d)
        return d.factor * math.exp(mu + sigma**2 / 2)
    if name in ("exponential", "gamma") and d.mean is not None:
        return d.factor * d.mean
    if name == "constant":
        return d.factor * float(d.value or 0.0)
    gen = rng if rng is not None else np.random.default_rng(0)
    return float(make_draw(d)(gen, 200_000).mean())


class Sampler:
    """Hands out pre-drawn variates one at a time (``next()``), refilling in batches."""

    __slots__ = ("_draw", "_rng", "_buf", "_i")

    def __init__(self, draw: Draw, rng: np.random.Generator) -> None:
        self._draw = draw
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        i = self._i
        if i >= len(self._buf):
            self._buf = self._draw(self._rng, BATCH).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


def uniform_sampler(rng: np.random.Generator) -> Sampler:
    return Sampler(lambda r, n: r.random(n), rng)
