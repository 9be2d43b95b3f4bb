"""Pareto front, false-promotion constraint, and the choice of one candidate.

The three objectives are minimised: **bad requests** (pooled over the scenarios: predictions
served by truly infeasible versions, the exposure the rollout caused), **time to decision**
(seconds, mean over the scenarios) and **false rollback** (rate). **False promotion** is not
traded against them: shipping a bad version is the failure a rollout policy exists to prevent, so
it is a constraint. A candidate is *feasible* when its pooled false-promotion rate is at most

* ``--max-false-promotion X`` when given, else
* the baseline's rate plus the baseline's bootstrap margin (upper 95% bound minus mean): a
  candidate may not be worse than the defaults by more than the defaults' own sampling noise.

The front is the set of feasible candidates that no other feasible candidate dominates (no worse
in every objective and better in one). Ties (identical objective vectors) all stay on the front.

The chosen candidate (``--choose``): ``knee`` (default) is the front point closest to the utopia
point (every objective at its best over the front) after scaling each objective to [0, 1] over
the front, the usual compromise when no weights are given; ``bad_requests``,
``time_to_decision`` or ``false_rollback`` take the front point best on that objective (ties
broken by the other two, then by candidate order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

OBJECTIVES: tuple[str, ...] = ("bad_requests", "time_to_decision", "false_rollback")
CHOICES: tuple[str, ...] = ("knee", *OBJECTIVES)


def dominates(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> bool:
    """``a`` is no worse than ``b`` in every objective and strictly better in one (minimising)."""
    return bool(np.all(a <= b) and np.any(a < b))


def pareto_mask(
    points: npt.NDArray[np.float64], feasible: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.bool_]:
    """Which rows of ``points`` (candidates x objectives, minimised) are on the feasible front."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    ok = np.ones(n, dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    if pts.ndim != 2 or np.isnan(pts[ok]).any():
        raise ValueError("points must be a 2-d array without NaN among the feasible rows")
    mask = ok.copy()
    for i in np.flatnonzero(ok):
        for j in np.flatnonzero(ok):
            if i != j and dominates(pts[j], pts[i]):
                mask[i] = False
                break
    return mask


def false_promotion_limit(baseline_rate: float, baseline_hi: float, maximum: float | None) -> float:
    """The feasibility bound on a candidate's false-promotion rate (module docstring)."""
    if maximum is not None:
        return float(maximum)
    return float(baseline_rate + max(0.0, baseline_hi - baseline_rate))


def choose(points: npt.NDArray[np.float64], front: npt.NDArray[np.bool_], how: str = "knee") -> int:
    """Index of the chosen front point; see the module docstring for ``how``."""
    rows = np.flatnonzero(front)
    if len(rows) == 0:
        raise ValueError("the front is empty")
    pts = np.asarray(points, dtype=np.float64)[rows]
    if how == "knee":
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        distance = np.sqrt((((pts - lo) / span) ** 2).sum(axis=1))
        order = np.lexsort((np.arange(len(rows)), *pts.T[::-1], distance))
        return int(rows[order[0]])
    if how not in OBJECTIVES:
        raise ValueError(f"unknown choice {how!r}; one of {', '.join(CHOICES)}")
    k = OBJECTIVES.index(how)
    keys: Sequence[npt.NDArray[np.float64]] = [pts[:, j] for j in range(pts.shape[1]) if j != k]
    order = np.lexsort((np.arange(len(rows)), *reversed(keys), pts[:, k]))
    return int(rows[order[0]])


def paired_delta(
    candidate: npt.NDArray[np.float64],
    baseline: npt.NDArray[np.float64],
    rng: np.random.Generator,
    resamples: int = 2000,
) -> tuple[float, float, float]:
    """Mean of ``candidate - baseline`` over common seeds and its percentile bootstrap 95% interval.

    With common random numbers both arrays are indexed by the same seeds, so the difference is
    paired and its interval is much narrower than the two separate intervals suggest."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if len(diff) == 0:
        return float("nan"), float("nan"), float("nan")
    idx = rng.integers(0, len(diff), size=(resamples, len(diff)))
    lo, hi = np.percentile(diff[idx].mean(axis=1), [2.5, 97.5])
    return float(diff.mean()), float(lo), float(hi)
