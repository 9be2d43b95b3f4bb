"""Kayenta-judged canary: a NetflixACAJudge judgement every interval decides the next weight step.

Kayenta compares *time series* of the baseline and the canary over a window, with one data point
per ``step`` (say one per minute). The loop hands a strategy one value per metric, version and
iteration, cumulative since the experiment start, so this strategy builds the series itself:

* every iteration appends one sample per metric and version to a sliding window of the last
  ``lookbackIntervals`` iterations (Kayenta's sliding ``lookbackMins``), kept in ``Decision.state``;
* what a sample is depends on the metric's ``kind``:

  - ``gauge`` (default): the observed value as it is;
  - ``counter``: the increase since the previous iteration (the value is a cumulative count);
  - ``per: <count metric>``: the value is a cumulative mean or ratio over that count (mean latency
    per request, errors per request), and the sample is the *per-interval* mean,
    ``Δ(value·count) / Δcount``: exactly the mean over the interval's requests;

* a missing value (or an interval without requests) gives a NaN sample, which Kayenta's
  ``nanStrategy`` removes (default) or replaces with 0.

Note that cumulative gauges give strongly autocorrelated samples; use ``per`` or ``counter`` where
the metric allows it. Each judgement follows ``kayenta_judge`` (98% Mann-Whitney interval, the 0.25
tolerance, mean-ratio gates, group weights, critical metrics, NODATA >= 50% → 0). The orchestration
follows Kayenta's MonitorCanaryTask: a score ``<= marginal`` fails (rollback) — so a score exactly
at ``marginal`` fails although the judge calls it Marginal —, ``marginal < score < pass`` holds the
weight, ``score >= pass`` advances the weight by ``stepWeight`` (never beyond ``maxWeight``); a
passing judgement at ``maxWeight`` promotes the candidate.

The first iteration (the canary has had no traffic yet) only moves the weight to ``stepWeight``;
then ``minSamples`` iterations with canary traffic are collected before the first judgement.

Parameters: ``metrics`` (list of ``{name, direction: increase|decrease|either, critical,
mustHaveData, nanStrategy: remove|replace, outliers: keep|remove, group, weight, allowedIncrease,
allowedDecrease, kind: gauge|counter, per}``; default: the plan's objectives as gauges, direction
``increase`` for an upper limit, ``decrease`` for a lower one), ``groupWeights`` ({group: weight};
a metric's ``weight`` sets its group's weight), ``thresholds`` ({marginal: 75, pass: 95}),
``stepWeight`` (10), ``maxWeight`` (50), ``lookbackIntervals`` (10), ``minSamples`` (3).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from simkit.strategies.base import Decision, Observation, Plan, Verdict, register
from simkit.strategies.kayenta_judge import MetricConfig, classify, score
from simkit.strategies.roles import Params, check_number, param_error, single_candidate, split, value

_METRIC_KEYS = {
    "name",
    "direction",
    "critical",
    "mustHaveData",
    "nanStrategy",
    "outliers",
    "group",
    "weight",
    "allowedIncrease",
    "allowedDecrease",
    "kind",
    "per",
}


@register("kayenta")
class KayentaStrategy:
    """Kayenta canary: NetflixACAJudge (Mann-Whitney) score each interval gates the weight steps."""

    name = "kayenta"

    def __init__(self, plan: Plan, params: Mapping[str, Any]) -> None:
        p = Params(self.name, params)
        self.plan = plan
        self.baseline, self.canary = single_candidate(plan, self.name)
        self.step_weight = p.integer("stepWeight", 10, minimum=1, maximum=100)
        self.max_weight = p.integer("maxWeight", 50, minimum=1, maximum=100)
        self.lookback = p.integer("lookbackIntervals", 10, minimum=1)
        self.min_samples = p.integer("minSamples", 3, minimum=1)
        thresholds = p.raw("thresholds", {})
        if not isinstance(thresholds, Mapping) or set(thresholds) - {"marginal", "pass"}:
            raise param_error("thresholds", "must be {marginal: number, pass: number}")
        self.marginal = check_number(
            "thresholds.marginal", thresholds.get("marginal", 75), minimum=0, maximum=100
        )
        self.passing = check_number("thresholds.pass", thresholds.get("pass", 95), minimum=0, maximum=100)
        if self.marginal > self.passing:
            raise param_error("thresholds", "marginal must not exceed pass")
        raw_weights = p.raw("groupWeights", {})
        if not isinstance(raw_weights, Mapping):
            raise param_error("groupWeights", "must map group names to weights")
        self.group_weights = {
            str(g): check_number(f"groupWeights.{g}", w, minimum=0) for g, w in raw_weights.items()
        }
        self.metrics, self.kinds = self._metrics(p.raw("metrics"))
        p.finish()
        if not self.metrics:
            raise param_error(
                "metrics", "no metrics to judge: give params.metrics or objectives in the experiment"
            )

    def _metrics(self, raw: Any) -> tuple[tuple[MetricConfig, ...], dict[str, tuple[str, str | None]]]:
        if raw is None:
            raw = [
                {
                    "name": o.metric,
                    "direction": "either"
                    if o.upper_limit is not None and o.lower_limit is not None
                    else ("increase" if o.upper_limit is not None else "decrease"),
                }
                for o in self.plan.objectives
            ]
        if not isinstance(raw, list):
            raise param_error("metrics", "must be a list of metric configurations")
        configs, kinds = [], {}
        for i, m in enumerate(raw):
            at = f"metrics[{i}]"
            if not isinstance(m, Mapping) or not isinstance(m.get("name"), str):
                raise param_error(at, "must be a mapping with the metric reference under 'name'")
            if set(m) - _METRIC_KEYS:
                raise param_error(
                    f"{at}.{sorted(set(m) - _METRIC_KEYS)[0]}",
                    f"unknown key; known: {', '.join(sorted(_METRIC_KEYS))}",
                )
            choices = {
                "direction": ("either", "increase", "decrease"),
                "nanStrategy": ("remove", "replace"),
                "outliers": ("keep", "remove"),
                "kind": ("gauge", "counter"),
            }
            for key, allowed in choices.items():
                if key in m and m[key] not in allowed:
                    raise param_error(f"{at}.{key}", f"must be one of {', '.join(allowed)}")
            for key in ("critical", "mustHaveData"):
                if key in m and not isinstance(m[key], bool):
                    raise param_error(f"{at}.{key}", "must be true or false")
            group = str(m.get("group", "default"))
            if "weight" in m:
                weight = check_number(f"{at}.weight", m["weight"], minimum=0)
                if self.group_weights.get(group, weight) != weight:
                    raise param_error(
                        f"{at}.weight", f"conflicts with the weight already set for group {group!r}"
                    )
                self.group_weights[group] = weight
            per = m.get("per")
            if per is not None and not isinstance(per, str):
                raise param_error(f"{at}.per", "must be a metric reference")
            configs.append(
                MetricConfig(
                    name=m["name"],
                    direction=m.get("direction", "either"),
                    critical=m.get("critical", False),
                    must_have_data=m.get("mustHaveData", False),
                    nan_strategy=m.get("nanStrategy", "remove"),
                    outliers=m.get("outliers", "keep"),
                    group=group,
                    allowed_increase=check_number(
                        f"{at}.allowedIncrease", m.get("allowedIncrease", 1.0), minimum=0
                    ),
                    allowed_decrease=check_number(
                        f"{at}.allowedDecrease", m.get("allowedDecrease", 1.0), minimum=0
                    ),
                )
            )
            kinds[m["name"]] = ("per" if per else m.get("kind", "gauge"), per)
        return tuple(configs), kinds

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision:
        st = copy.deepcopy(dict(observation.state))
        weight = int(st.get("weight", 0))
        canary_intervals = int(st.get("canaryIntervals", 0)) + (1 if weight > 0 else 0)
        prev: dict[str, Any] = st.get("prev", {})
        samples: dict[str, Any] = st.get("samples", {})
        for cfg in self.metrics:
            for version in self.plan.versions[:2]:
                sample = self._sample(cfg.name, version, observation, prev)
                series = samples.setdefault(cfg.name, {}).setdefault(version, [])
                series.append(sample)
                del series[: -self.lookback]

        def out(
            new_weight: int,
            reason: str,
            verdict: Verdict = "continue",
            extra: Mapping[str, Any] | None = None,
        ) -> Decision:
            return Decision(
                weights=split(self.plan, self.canary, new_weight),
                winner=self.canary if verdict == "promote" else None,
                verdict=verdict,
                reason=reason,
                state={
                    "weight": new_weight,
                    "canaryIntervals": canary_intervals,
                    "prev": prev,
                    "samples": samples,
                    **(extra or {}),
                },
            )

        if weight == 0:
            return out(min(self.step_weight, self.max_weight), f"starting the canary at {self.step_weight}%")
        if canary_intervals < self.min_samples:
            return out(
                weight,
                f"collecting samples ({canary_intervals}/{self.min_samples} intervals with canary "
                f"traffic) at weight {weight}",
            )
        results = [
            classify(_floats(samples[c.name][self.baseline]), _floats(samples[c.name][self.canary]), c, rng)
            for c in self.metrics
        ]
        judgement = score(results, self.group_weights)
        summary = "; ".join(f"{r.name}: {r.classification}" for r in results)
        verdict_text = (
            f"score {judgement.score:g}"
            + (f" ({judgement.zero_reason})" if judgement.zero_reason else "")
            + f" [{summary}]"
        )
        extra = {
            "lastScore": judgement.score,
            "lastClassifications": {r.name: r.classification for r in results},
        }
        if judgement.score <= self.marginal:
            return out(
                0,
                f"{verdict_text} <= marginal {self.marginal:g}: canary failed, rolling back",
                "rollback",
                extra,
            )
        if judgement.score < self.passing:
            return out(
                weight,
                f"{verdict_text} is marginal (< pass {self.passing:g}): holding weight {weight}",
                extra=extra,
            )
        if weight >= self.max_weight:
            return out(
                100,
                f"{verdict_text} passed at maxWeight {self.max_weight}: promoting {self.canary}",
                "promote",
                extra,
            )
        new_weight = min(self.max_weight, weight + self.step_weight)
        return out(
            new_weight,
            f"{verdict_text} passed: advancing canary weight {weight} -> {new_weight}",
            extra=extra,
        )

    def _sample(
        self, metric: str, version: str, observation: Observation, prev: dict[str, Any]
    ) -> float | None:
        """One per-iteration data point; ``prev`` keeps the cumulative values of the last one."""
        kind, per = self.kinds[metric]
        current = value(observation, metric, version)
        if kind == "gauge":
            return current
        last = prev.setdefault(metric, {}).get(version, [0.0, 0.0])
        if kind == "counter":
            if current is None:
                return None
            prev[metric][version] = [current, 0.0]
            return current - last[0]
        count = value(observation, per, version) if per else None
        if current is None or count is None:
            return None
        total = current * count
        if count - last[1] <= 0:
            return None
        prev[metric][version] = [total, count]
        return (total - last[0]) / (count - last[1])


def _floats(series: list[float | None]) -> list[float | None]:
    return [None if v is None or not math.isfinite(v) else float(v) for v in series]
