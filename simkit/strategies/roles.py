"""Parameter handling shared by the non-Iter8 strategies: validation, metric roles, checks, weights.

Strategies are configured by a plain mapping (``params`` in a scenario file or ``--param``). This
module turns that mapping into validated Python values with one clear :class:`SpecError` per
mistake (unknown parameter, wrong type, out of range, missing metric role), so that every strategy
reports bad input the same way: ``<strategy params>: field <name>: <message>``.

Metric roles name which of the Experiment's metrics play which part for a strategy, e.g.::

    metrics: {requests: iter8-seldon/request-count, errors: iter8-seldon/error-count,
              reward: iter8-seldon/user-engagement}

``reward`` defaults to ``plan.rewards[0].metric`` and ``requests`` to ``plan.request_count``;
the other roles have no default.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from simkit.errors import SpecError
from simkit.strategies.base import PARAMS_WHERE, Observation, Plan

WHERE = PARAMS_WHERE
ROLES = ("requests", "errors", "reward", "latency", "errorRate")


def param_error(field: str | None, message: str) -> SpecError:
    return SpecError(WHERE, field, message)


class Params:
    """Typed access to a strategy's parameter mapping; :meth:`finish` rejects unknown names."""

    def __init__(self, strategy: str, params: Mapping[str, Any]) -> None:
        if not isinstance(params, Mapping):
            raise param_error(None, f"parameters of strategy {strategy!r} must be a mapping")
        self.strategy = strategy
        self._params = dict(params)
        self._known: list[str] = []

    def has(self, name: str) -> bool:
        self._known.append(name)
        return self._params.get(name) is not None

    def raw(self, name: str, default: Any = None) -> Any:
        self._known.append(name)
        value = self._params.get(name)
        return default if value is None else value

    def number(
        self, name: str, default: float | None, *, minimum: float | None = None, maximum: float | None = None
    ) -> float:
        value = self.raw(name, default)
        if value is None:
            raise param_error(name, f"is required by strategy {self.strategy!r}")
        return check_number(name, value, minimum=minimum, maximum=maximum)

    def integer(
        self, name: str, default: int | None, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.number(name, default, minimum=minimum, maximum=maximum)
        if value != int(value):
            raise param_error(name, f"must be a whole number, got {value!r}")
        return int(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise param_error(name, f"must be true or false, got {value!r}")
        return value

    def choice(self, name: str, default: str, options: Iterable[str]) -> str:
        value = self.raw(name, default)
        allowed = tuple(options)
        if value not in allowed:
            raise param_error(name, f"must be one of {', '.join(allowed)}; got {value!r}")
        return str(value)

    def finish(self) -> None:
        unknown = sorted(set(self._params) - set(self._known))
        if unknown:
            known = ", ".join(sorted(set(self._known)))
            raise param_error(unknown[0], f"unknown parameter for strategy {self.strategy!r}; known: {known}")


def check_number(
    field: str, value: Any, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(float(value)):
        raise param_error(field, f"must be a number, got {value!r}")
    number = float(value)
    if minimum is not None and number < minimum:
        raise param_error(field, f"must be >= {minimum:g}, got {number:g}")
    if maximum is not None and number > maximum:
        raise param_error(field, f"must be <= {maximum:g}, got {number:g}")
    return number


class MetricRoles:
    """Which Experiment metric plays which role (requests, errors, reward, ...) for a strategy."""

    def __init__(self, strategy: str, plan: Plan, raw: Any, allowed: Iterable[str] = ROLES) -> None:
        self.strategy = strategy
        allowed = tuple(allowed)
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise param_error("metrics", "must map a role (" + ", ".join(allowed) + ") to a metric reference")
        roles: dict[str, str] = {}
        if plan.rewards:
            roles["reward"] = plan.rewards[0].metric
        if plan.request_count:
            roles["requests"] = plan.request_count
        for role, ref in raw.items():
            if role not in allowed:
                raise param_error(f"metrics.{role}", f"unknown metric role; known: {', '.join(allowed)}")
            if not isinstance(ref, str) or not ref:
                raise param_error(f"metrics.{role}", f"must be a metric reference string, got {ref!r}")
            roles[str(role)] = ref
        self._roles = {k: v for k, v in roles.items() if k in allowed}

    def get(self, role: str) -> str | None:
        return self._roles.get(role)

    def require(self, role: str) -> str:
        ref = self._roles.get(role)
        if ref is None:
            raise param_error(
                f"metrics.{role}",
                f"strategy {self.strategy!r} needs the metric role {role!r} and it has no default; "
                f"set it to one of the Experiment's metrics, e.g. metrics: {{{role}: ns/{role}-count}}",
            )
        return ref


@dataclass(frozen=True)
class Check:
    """An absolute limit on one metric (Iter8 objective / Flagger thresholdRange); limits inclusive."""

    metric: str
    upper: float | None = None
    lower: float | None = None

    def passes(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.upper is not None and value > self.upper:
            return False
        return not (self.lower is not None and value < self.lower)

    def explain(self, value: float | None) -> str:
        if value is None:
            return f"no value for {self.metric}"
        if self.upper is not None and value > self.upper:
            return f"{self.metric} = {value:.6g} > upper limit {self.upper:g}"
        if self.lower is not None and value < self.lower:
            return f"{self.metric} = {value:.6g} < lower limit {self.lower:g}"
        return f"{self.metric} = {value:.6g} within limits"


def parse_checks(raw: Any, plan: Plan, field: str = "checks") -> tuple[Check, ...]:
    """``[{metric, upper?, lower?}]`` from params, or the plan's objectives when ``raw`` is None."""
    if raw is None:
        return tuple(Check(o.metric, o.upper_limit, o.lower_limit) for o in plan.objectives)
    if not isinstance(raw, list):
        raise param_error(field, "must be a list of {metric, upper, lower}")
    checks = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("metric"), str):
            raise param_error(where, "must be a mapping with a metric reference under 'metric'")
        extra = set(item) - {"metric", "upper", "lower"}
        if extra:
            raise param_error(f"{where}.{sorted(extra)[0]}", "unknown key; known: metric, upper, lower")
        upper = None if item.get("upper") is None else check_number(f"{where}.upper", item["upper"])
        lower = None if item.get("lower") is None else check_number(f"{where}.lower", item["lower"])
        if upper is None and lower is None:
            raise param_error(where, "needs an upper or a lower limit")
        checks.append(Check(item["metric"], upper, lower))
    return tuple(checks)


def assess(
    checks: tuple[Check, ...], observation: Observation, versions: Iterable[str]
) -> dict[str, tuple[bool, ...]]:
    """Per-version pass/fail of every check, Iter8 style (a missing value fails)."""
    return {v: tuple(c.passes(value(observation, c.metric, v)) for c in checks) for v in versions}


def value(observation: Observation, metric: str, version: str) -> float | None:
    """A metric value, with NaN/inf normalised to None (unavailable)."""
    raw = observation.value(metric, version)
    if raw is None:
        return None
    number = float(raw)
    return number if math.isfinite(number) else None


def single_candidate(plan: Plan, strategy: str) -> tuple[str, str]:
    """(baseline, candidate) for strategies that, like Flagger and Argo, progress one canary."""
    if len(plan.versions) != 2:
        raise param_error(
            "versions",
            f"strategy {strategy!r} works with one baseline and one candidate; "
            f"the experiment has {len(plan.versions)} versions",
        )
    return plan.versions[0], plan.versions[1]


def split(plan: Plan, candidate: str, weight: int) -> dict[str, int]:
    """Weights with ``candidate`` at ``weight`` percent, the baseline at the rest, others at 0."""
    weights = dict.fromkeys(plan.versions, 0)
    weights[candidate] = weight
    weights[plan.baseline] = 100 - weight
    return weights
