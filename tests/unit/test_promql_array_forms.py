"""The array forms of Prometheus' extrapolation (``extrapolate_many``) and bucket interpolation
(``bucket_quantile_many``), used by ``simkit plan`` over thousands of paths, are the engine's scalar
forms element for element: one rule, two shapes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from simkit.promql.aggregate import bucket_quantile, bucket_quantile_many
from simkit.promql.rangefuncs import _extrapolate, extrapolate_many


def _cases(rng: np.random.Generator, k: int) -> list[tuple[int, int, float, float, int, int, int]]:
    out = []
    for _ in range(k):
        start = int(rng.integers(-60_000, 60_000))
        length = int(rng.integers(1_000, 600_000))
        end = start + length
        n = int(rng.integers(2, 40))
        step = int(rng.integers(1, max(2, length // n)))
        first_t = int(rng.integers(start, end - (n - 1) * step + 1))
        last_t = first_t + (n - 1) * step
        first_v = float(rng.choice([0.0, 1.0, 3.0, float(rng.exponential(50))]))
        result = float(rng.choice([0.0, 1.0, float(rng.exponential(100))]))
        out.append((first_t, last_t, first_v, result, n, start, end))
    # the zero-point clamp's edges: a counter born at the first sample, or long before it
    out += [(30_000, 60_000, 2.0, 2.0, 2, 0, 60_000), (30_000, 60_000, 1e9, 1.0, 2, 0, 60_000)]
    return out


@pytest.mark.parametrize(("is_counter", "is_rate"), [(True, False), (True, True), (False, False)])
def test_array_form_equals_the_scalar_form(is_counter: bool, is_rate: bool) -> None:
    cases = _cases(np.random.default_rng(7), 3000)
    scalar = [_extrapolate(*c[:5], c[5], c[6], c[6] - c[5], is_counter, is_rate) for c in cases]
    cols = [np.array(c) for c in zip(*cases, strict=True)]
    array = extrapolate_many(
        first_t=cols[0],
        last_t=cols[1],
        first_v=cols[2],
        result=cols[3],
        n=cols[4],
        range_start=cols[5],
        range_end=cols[6],
        is_counter=is_counter,
        is_rate=is_rate,
    )
    assert np.array_equal(array, np.array(scalar))


def test_one_window_many_paths_at_once() -> None:
    """The plan's shape: one window, arrays of samples; and a mutation (no zero-point clamp) differs."""
    rng = np.random.default_rng(3)
    first_t = rng.choice([30_000, 60_000, 90_000], size=500)
    first_v = rng.poisson(2.0, size=500).astype(float)
    result = rng.poisson(4.0, size=500).astype(float)
    window: dict[str, Any] = {"first_t": first_t, "last_t": 120_000, "first_v": first_v, "result": result}
    n = (120_000 - first_t) // 30_000 + 1
    many = extrapolate_many(**window, n=n, range_start=0, range_end=120_000)
    one = [
        _extrapolate(int(t), 120_000, float(v), float(r), int(k), 0, 120_000, 120_000, True, False)
        for t, v, r, k in zip(first_t, first_v, result, n, strict=True)
    ]
    assert np.array_equal(many, np.array(one))
    gauge = extrapolate_many(**window, n=n, range_start=0, range_end=120_000, is_counter=False)
    assert not np.array_equal(gauge, many)  # the clamp matters on these windows


def test_bucket_quantile_array_form_equals_the_scalar_form() -> None:
    """histogram_quantile's bucket interpolation, many histograms at once (the plan's p95 per
    path), against the engine's scalar form; empty, all-in-+Inf and one-bucket histograms
    included."""
    rng = np.random.default_rng(11)
    bounds = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, math.inf]
    counts = rng.poisson(rng.exponential(20, size=(2000, 1)) * rng.dirichlet(np.ones(9), size=2000))
    counts[:5] = 0
    counts[5:10, :-1] = 0  # everything above the largest bound
    counts[10:15, 1:] = 0  # everything in the first bucket
    cumulative = np.cumsum(counts, axis=1).astype(float)
    for q in (0.5, 0.95, 0.99):
        many = bucket_quantile_many(q, bounds, cumulative)
        one = [bucket_quantile(q, list(zip(bounds, row.tolist(), strict=True))) for row in cumulative]
        assert np.array_equal(many, np.array(one), equal_nan=True)
