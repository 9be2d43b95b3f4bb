"""Kayenta's NetflixACAJudge-v1.0: per-metric Mann-Whitney classification and weighted group scoring.

Sources (spinnaker/kayenta): ``kayenta-mannwhitney/.../MannWhitney.scala`` (the confidence
interval, itself a port of R's ``wilcox.test`` asymptotic two-sample interval),
``kayenta-judge/.../MannWhitneyClassifier.scala``, ``NetflixACAJudge.scala`` and
``WeightedSumScorer.scala``; see ``docs/peers.md`` B.3.

The interval. With ``x`` the experiment (canary) sample, ``y`` the control (baseline) sample, and
``mu`` a location shift, Kayenta ranks ``x - mu`` together with ``y`` (average ranks for ties) and
computes ``W(mu, zq) = (dz - 0.5·sign(dz)) / sigma - zq`` where ``dz`` is the rank sum of
``x - mu`` minus ``nx(nx+1)/2 + nx·ny/2`` and ``sigma`` the tie-corrected standard deviation. The
98% interval is ``[root(W(., +z)), root(W(., -z))]`` with ``z = Φ⁻¹(0.99)``, searched on
``[min(x)-max(y), max(x)-min(y)]`` (an endpoint is returned when the function does not change
sign there); the estimate is the root of ``W(., 0)``. ``W`` is a step function of ``mu`` that
jumps only at the pairwise differences ``x_i - y_j``, so Kayenta's Brent solver converges on one
of those differences (to its 1e-4 tolerance). simkit finds that jump exactly by a search over the
sorted differences, which equals Kayenta's answer up to the solver tolerance and does not depend on
the metric's scale. Where ``W`` is exactly zero on a stretch (the estimate), any point of it is a
root; simkit returns the median of the pairwise differences (the Hodges-Lehmann estimator), which
lies in that stretch, clipped to it in the rare cases with tied differences where it does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

CONFIDENCE = 0.98  # NetflixACAJudge literal
TOLERANCE = 0.25  # bound = TOLERANCE * |estimate|


class MannWhitneyError(Exception):
    """Kayenta's MannWhitneyException: the interval cannot be computed (all observations tied)."""


@dataclass(frozen=True)
class Interval:
    lower: float
    upper: float
    estimate: float


def mann_whitney_interval(
    control: np.ndarray, experiment: np.ndarray, confidence: float = CONFIDENCE
) -> Interval:
    """Kayenta's confidence interval and estimate for the shift ``experiment - control``."""
    x = np.asarray(experiment, dtype=float)
    y = np.asarray(control, dtype=float)
    nx, ny = len(x), len(y)
    if nx == 0 or ny == 0:
        raise MannWhitneyError("empty sample")
    from scipy import stats  # here, not at the top: scipy.stats costs ~0.7 s of start-up

    diffs = np.sort((x[:, None] - y[None, :]).ravel())
    unique = np.unique(diffs)
    mu_min, mu_max = float(unique[0]), float(unique[-1])

    def at_point(mu: float, zq: float) -> float:  # W exactly as Kayenta computes it, at any mu
        ranks = stats.rankdata(np.concatenate([x - mu, y]), method="average")
        dz = ranks[:nx].sum() - nx * (nx + 1) / 2 - nx * ny / 2
        _, ties = np.unique(ranks, return_counts=True)
        return (dz - np.sign(dz) * 0.5) / _sigma(nx, ny, ties) - zq

    # Between two consecutive differences no x_i - mu ties with a y_j, so only ties inside x and
    # inside y enter sigma, and dz = #(x_i - y_j > mu) - nx*ny/2 (the Mann-Whitney U identity).
    ties_inside = np.concatenate([np.unique(x, return_counts=True)[1], np.unique(y, return_counts=True)[1]])
    sigma = _sigma(nx, ny, ties_inside)
    mids = (unique[:-1] + unique[1:]) / 2
    dz_mid = (len(diffs) - np.searchsorted(diffs, mids, side="right")) - nx * ny / 2
    corrected = (dz_mid - np.sign(dz_mid) * 0.5) / sigma

    def root(zq: float, check_ends: bool) -> float:
        if check_ends:
            if at_point(mu_min, zq) <= 0:
                return mu_min
            if at_point(mu_max, zq) >= 0:
                return mu_max
        values = corrected - zq  # non-increasing over the stretches between differences
        below = np.nonzero(values <= 0)[0]
        if len(below) == 0:
            return mu_max
        k = int(below[0])
        if values[k] < 0:
            return float(unique[k])  # the jump at the left end of stretch k
        last = k
        while last + 1 < len(values) and values[last + 1] == 0:
            last += 1
        # any point of the zero stretch is a root; take the median of the differences within it
        return float(np.clip(np.median(diffs), unique[k], unique[last + 1]))

    z = float(stats.norm.ppf((1 - confidence) / 2))  # negative
    return Interval(lower=root(-z, True), upper=root(z, True), estimate=root(0.0, False))


def _sigma(nx: int, ny: int, ties: np.ndarray) -> float:
    n = nx + ny
    tie_term = float(np.sum(ties.astype(float) ** 3 - ties)) / (n * (n - 1)) if n > 1 else 0.0
    var = nx * ny / 12 * ((n + 1) - tie_term)
    if var <= 0:
        raise MannWhitneyError("cannot compute confidence interval when all observations are tied")
    return math.sqrt(var)


@dataclass(frozen=True)
class MetricConfig:
    """One metric of the canary config (``analysisConfigurations.canary`` in Kayenta)."""

    name: str
    direction: str = "either"  # increase | decrease | either: which change is bad
    critical: bool = False
    must_have_data: bool = False
    nan_strategy: str = "remove"  # remove | replace (with 0)
    outliers: str = "keep"  # keep | remove (IQR detector, factor 3, reduced sensitivity)
    group: str = "default"
    allowed_increase: float = 1.0  # meanRatio effect-size gates
    allowed_decrease: float = 1.0


@dataclass(frozen=True)
class MetricResult:
    name: str
    group: str
    classification: str  # Pass | High | Low | Nodata | NodataFailMetric | Error
    reason: str
    critical: bool
    ratio: float = math.nan
    interval: Interval | None = None


def transform(values: Sequence[float | None], cfg: MetricConfig) -> np.ndarray:
    data = np.array([math.nan if v is None else v for v in values], dtype=float)
    data = np.nan_to_num(data, nan=0.0) if cfg.nan_strategy == "replace" else data[~np.isnan(data)]
    if cfg.outliers == "remove" and len(data) > 0:
        q1, q3, p1, p99 = np.percentile(data, [25, 75, 1, 99])
        low, high = min(p1, q1 - 3.0 * (q3 - q1)), max(p99, q3 + 3.0 * (q3 - q1))
        data = data[(data >= low) & (data <= high)]
    return data


def classify(
    control_raw: Sequence[float | None],
    experiment_raw: Sequence[float | None],
    cfg: MetricConfig,
    rng: np.random.Generator,
) -> MetricResult:
    """MannWhitneyClassifier: Pass, High, Low or a no-data outcome for one metric."""
    control, experiment = transform(control_raw, cfg), transform(experiment_raw, cfg)

    def result(
        label: str, reason: str, ratio: float = math.nan, interval: Interval | None = None
    ) -> MetricResult:
        return MetricResult(cfg.name, cfg.group, label, reason, cfg.critical, ratio, interval)

    if len(control) == 0 or len(experiment) == 0:
        if cfg.nan_strategy == "replace":
            return result("Pass", "no data (nanStrategy replace)")
        label = "NodataFailMetric" if cfg.must_have_data and not cfg.critical else "Nodata"
        return result(label, f"no data (baseline {len(control)}, canary {len(experiment)} points)")
    if np.array_equal(np.sort(control), np.sort(experiment)):
        return result("Pass", "the canary and baseline data are identical", 1.0)
    if len(np.unique(np.concatenate([control, experiment]))) == 1:
        return result("Pass", "only one distinct value", 1.0)
    if len(np.unique(control)) == 1 and len(np.unique(experiment)) == 1:
        # both constant: Kayenta adds tiny Gaussian noise so that the rank test is defined
        control = control + rng.normal(0.0, abs(control[0]) * 1e-5, len(control))
        experiment = experiment + rng.normal(0.0, abs(experiment[0]) * 1e-5, len(experiment))
    try:
        interval = mann_whitney_interval(control, experiment)
    except MannWhitneyError as err:
        return result("Error", f"metric classification failed: {err}")
    mean_control = float(np.mean(control))
    ratio = float(np.mean(experiment)) / mean_control if mean_control != 0 else math.nan
    bound = TOLERANCE * abs(interval.estimate)
    text = (
        f"98% CI of shift [{interval.lower:.6g}, {interval.upper:.6g}], estimate {interval.estimate:.6g}, "
        f"mean ratio {ratio:.4g}"
    )
    if (
        cfg.direction in ("increase", "either")
        and interval.lower > bound
        and (math.isnan(ratio) or ratio >= cfg.allowed_increase)
    ):
        return result("High", f"High: {text}", ratio, interval)
    if (
        cfg.direction in ("decrease", "either")
        and interval.upper < -bound
        and (math.isnan(ratio) or ratio <= cfg.allowed_decrease)
    ):
        return result("Low", f"Low: {text}", ratio, interval)
    return result("Pass", f"Pass: {text}", ratio, interval)


@dataclass(frozen=True)
class Judgement:
    score: float
    group_scores: Mapping[str, float]
    results: tuple[MetricResult, ...]
    zero_reason: str = ""  # why the score was forced to 0, if it was
    notes: tuple[str, ...] = field(default_factory=tuple)


def score(results: Sequence[MetricResult], group_weights: Mapping[str, float]) -> Judgement:
    """WeightedSumScorer plus the judge's critical and NODATA rules."""
    groups: dict[str, list[str]] = {}
    for r in results:
        groups.setdefault(r.group, []).append(r.classification)
    group_scores: dict[str, float] = {}
    for name, labels in groups.items():
        passed = labels.count("Pass")
        countable = passed + labels.count("High") + labels.count("Low") + labels.count("NodataFailMetric")
        group_scores[name] = 100.0 * passed / countable if countable else 100.0
    unweighted = [g for g in group_scores if g not in group_weights]
    share = (100.0 - sum(group_weights.values())) / len(unweighted) if unweighted else 0.0
    summary = round(sum(s * group_weights.get(g, share) / 100.0 for g, s in group_scores.items()), 2)
    critical = [r.name for r in results if r.critical and r.classification != "Pass"]
    if critical:
        return Judgement(
            0.0, group_scores, tuple(results), f"critical metric(s) failed: {', '.join(critical)}"
        )
    nodata = [r.name for r in results if r.classification in ("Nodata", "NodataFailMetric")]
    if results and len(nodata) >= 0.5 * len(results):
        return Judgement(
            0.0, group_scores, tuple(results), f"no data for {len(nodata)} of {len(results)} metrics (>= 50%)"
        )
    return Judgement(summary, group_scores, tuple(results))
