"""An anytime-valid test that the candidate is slower, on the executor's histogram bucket counts.

Prometheus keeps latency as cumulative bucket counts (``le`` bounds), so the data a canary sees
each interval is a multinomial table: requests per latency bin, per version. This module tests,
sequentially and with type-I error control over any number of looks, whether the candidate's
latency distribution is shifted *up* against the baseline's, in the spirit of Lindon, Sanden &
Shirikian, "Rapid Regression Detection in Software Deployments through Sequential Testing" (KDD
2022) and of the multinomial e-processes of Lindon & Malek (2022): a likelihood ratio on counts,
mixed over the alternative, is a nonnegative martingale under the null, so by Ville's inequality
``P(sup_t E_t >= 1/a) <= a`` however often one looks.

The construction, per interval ``t`` (the increments of the cumulative counts since the last
look):

* condition on the requests per bin ``m_k = x_k + y_k`` (candidate + baseline) and take
  ``rho_t`` = the candidate's share of the interval's requests. Under H0 (same distribution) the
  version a request came from is independent of its bin, so each of the ``m_k`` requests is the
  candidate's with probability ``rho_t``: whatever the split did inside the interval, whatever
  the traffic level, and whatever common scaling Prometheus' ``increase()`` extrapolation applied;
* the alternative is a shift on the log-latency scale: bin ``k`` gets the score ``s_k`` (the log
  of its geometric midpoint, centred on the interval's pooled mean so that it is orthogonal to
  the split) and the candidate's share of bin ``k`` is ``rho e^{d s_k} / (1 - rho + rho e^{d s_k})``
  (a logistic tilt; ``d > 0`` = candidate slower). For a log-location shift ``D`` of a lognormal
  with log-sd ``sigma`` the best ``d`` is about ``D / sigma^2``;
* the log likelihood ratio of the interval against ``d = 0`` is summed over intervals for each
  ``d`` of a fixed grid (``GRID`` points, log-spaced on ``(0, 20]``, equal prior weights), and the
  e-value is the prior-weighted mean of the exponentiated sums: a mixture, hence a martingale.

Validity is exact given ``rho_t``; using the realised share conditions on the split as well, which
leaves the first-order statistic unchanged and its variance smaller by ``(N - 1) / N``: asymptotically
exact, and checked by the A/A sweeps in ``tests/unit/test_latency_eprocess.py`` (the max over the
grid instead of the mean, or unnormalised prior weights, fail those sweeps: both are the usual way
to get this wrong). The test is one-sided on purpose: a faster candidate never rejects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

GRID = 48
FloatArray = npt.NDArray[np.float64]


def default_grid() -> FloatArray:
    """Tilts ``d`` in log-odds per unit of log latency: 0.02 (a 1% shift at sigma 0.7) to 20."""
    return np.exp(np.linspace(math.log(0.02), math.log(20.0), GRID))


def bin_scores(bounds: Sequence[float]) -> FloatArray:
    """Log geometric midpoints of the bins ``(0, b0], (b0, b1], ..., (b_last_finite, +Inf)``; the
    open ends get one more step of the neighbouring bin's log width."""
    finite = [float(b) for b in bounds if math.isfinite(b)]
    logs = np.log(np.asarray(finite, dtype=np.float64))
    if len(logs) == 1:
        return np.array([logs[0] - 0.5, logs[0] + 0.5])[: len(bounds)]
    mids = (logs[1:] + logs[:-1]) / 2
    first = logs[0] - (logs[1] - logs[0]) / 2
    scores = [first, *mids.tolist()]
    if len(bounds) > len(finite):  # a +Inf bucket
        scores.append(logs[-1] + (logs[-1] - logs[-2]) / 2)
    return np.asarray(scores, dtype=np.float64)


def bins_from_cumulative(cumulative: Sequence[float]) -> FloatArray:
    """Per-bin counts from Prometheus-style cumulative bucket counts (ascending ``le``)."""
    c = np.maximum.accumulate(np.maximum(np.asarray(cumulative, dtype=np.float64), 0.0))
    return np.diff(c, prepend=0.0)


def interval_log_lr(
    candidate: FloatArray, baseline: FloatArray, scores: FloatArray, grid: FloatArray
) -> tuple[FloatArray, float, float]:
    """(log LR per tilt in ``grid``, score statistic, its null variance) of one interval's bins."""
    m = candidate + baseline
    total = float(m.sum())
    n_c = float(candidate.sum())
    if total <= 0 or n_c <= 0 or n_c >= total:
        return np.zeros_like(grid), 0.0, 0.0
    rho = n_c / total
    centred = scores - float((m * scores).sum()) / total
    tilt = np.outer(grid, centred)  # (G, K)
    # log theta/rho and log (1-theta)/(1-rho) with theta = rho e^t / (1 - rho + rho e^t), stably
    log_norm = np.logaddexp(math.log1p(-rho), math.log(rho) + tilt)
    log_lr = (candidate * (tilt - log_norm) + baseline * (-log_norm)).sum(axis=1)
    stat = float((candidate * centred).sum())
    var = rho * (1 - rho) * float((m * centred * centred).sum())
    return log_lr, stat, var


def mixture_log_e(log_lr: FloatArray, weights: FloatArray | None = None) -> float:
    """log of the e-value: the prior-weighted mean of exp(log LR) (equal weights by default)."""
    w = np.full(len(log_lr), 1.0 / len(log_lr)) if weights is None else weights
    top = float(log_lr.max())
    return top + math.log(float((w * np.exp(log_lr - top)).sum()))


@dataclass
class LatencyShiftState:
    """What the test carries between looks (JSON-safe through :meth:`to_state`)."""

    previous: dict[str, list[float]] = field(default_factory=dict)  # version -> cumulative counts
    log_lr: list[float] = field(default_factory=list)  # per grid point
    stat: float = 0.0
    var: float = 0.0

    @classmethod
    def from_state(cls, raw: Mapping[str, Any] | None) -> LatencyShiftState:
        if not raw:
            return cls()
        return cls(
            previous={str(k): [float(x) for x in v] for k, v in (raw.get("previous") or {}).items()},
            log_lr=[float(x) for x in raw.get("logLR") or []],
            stat=float(raw.get("stat", 0.0)),
            var=float(raw.get("var", 0.0)),
        )

    def to_state(self) -> dict[str, Any]:
        return {"previous": self.previous, "logLR": self.log_lr, "stat": self.stat, "var": self.var}


@dataclass(frozen=True)
class LatencyShiftTest:
    """The one-sided mixture e-process on bucket counts (see the module docstring)."""

    bounds: tuple[float, ...]  # ascending ``le`` of the cumulative counts; the last may be +Inf
    grid: tuple[float, ...] = tuple(default_grid().tolist())

    def update(
        self, state: LatencyShiftState, candidate: Sequence[float], baseline: Sequence[float]
    ) -> LatencyShiftState:
        """Fold one look's cumulative counts (candidate, baseline) into the test."""
        grid = np.asarray(self.grid, dtype=np.float64)
        prev_c = state.previous.get("candidate", [0.0] * len(self.bounds))
        prev_b = state.previous.get("baseline", [0.0] * len(self.bounds))
        inc_c = np.maximum(bins_from_cumulative(candidate) - bins_from_cumulative(prev_c), 0.0)
        inc_b = np.maximum(bins_from_cumulative(baseline) - bins_from_cumulative(prev_b), 0.0)
        log_lr, stat, var = interval_log_lr(inc_c, inc_b, bin_scores(self.bounds), grid)
        total = np.asarray(state.log_lr, dtype=np.float64) if state.log_lr else np.zeros(len(grid))
        return LatencyShiftState(
            previous={"candidate": [float(x) for x in candidate], "baseline": [float(x) for x in baseline]},
            log_lr=(total + log_lr).tolist(),
            stat=state.stat + stat,
            var=state.var + var,
        )

    @staticmethod
    def log_e(state: LatencyShiftState) -> float:
        return mixture_log_e(np.asarray(state.log_lr, dtype=np.float64)) if state.log_lr else 0.0

    @staticmethod
    def z(state: LatencyShiftState) -> float:
        """Fixed-horizon z of the shift (score over its null sd): only for "signs of harm"."""
        return state.stat / math.sqrt(state.var) if state.var > 0 else 0.0
