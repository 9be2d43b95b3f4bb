"""The one protocol every rollout policy implements, and the registry that names them.

A strategy is pure (kopf-style): ``decide(observation, rng) -> Decision``. It never does I/O and
uses only the injected ``numpy.random.Generator`` for randomness, so the same observations and
seed give the same decisions in sim, replay and live. State a policy carries between iterations
(Flagger's failed-check counter, a posterior, ...) travels explicitly: it is returned in
``Decision.state`` and handed back in the next ``Observation.state``.

Strategies see :class:`Plan`, a small neutral view of the Experiment (versions, criteria,
patterns, weight limits) built by ``simkit.control`` from the spec, never the manifests
themselves, and metric values that the loop has already fetched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from simkit.errors import Location, SpecError

Verdict = Literal["continue", "promote", "rollback"]
"""``continue``: keep iterating. ``promote``: stop now, the winner is final.
``rollback``: stop now and restore the baseline (a failed objective, a failed canary)."""


@dataclass(frozen=True)
class Objective:
    metric: str  # the reference as written in the Experiment, e.g. "iter8-seldon/mean-latency"
    upper_limit: float | None = None
    lower_limit: float | None = None
    rollback_on_failure: bool = False

    def check(self, value: float) -> bool:
        """Iter8's check: both limits inclusive."""
        if self.upper_limit is not None and value > self.upper_limit:
            return False
        return not (self.lower_limit is not None and value < self.lower_limit)


@dataclass(frozen=True)
class Reward:
    metric: str
    preferred_direction: Literal["High", "Low"] = "High"


@dataclass(frozen=True)
class Plan:
    """What a strategy needs to know about the experiment, independent of manifests."""

    versions: tuple[str, ...]  # baseline first, then candidates
    testing_pattern: Literal["Canary", "A/B", "A/B/N", "Conformance"] = "A/B"
    deployment_pattern: Literal["Progressive", "FixedSplit", "BlueGreen"] = "Progressive"
    objectives: tuple[Objective, ...] = ()
    rewards: tuple[Reward, ...] = ()
    indicators: tuple[str, ...] = ()
    request_count: str | None = None
    # None means "no spec.strategy.weights": Iter8's analytics then applies no constraints.
    max_candidate_weight: float | None = 100.0
    max_candidate_weight_increment: float | None = 10.0
    interval_seconds: float = 20.0
    iterations: int = 15  # iterationsPerLoop * maxLoops
    metric_units: Mapping[str, str] = field(default_factory=dict)

    @property
    def baseline(self) -> str:
        return self.versions[0]

    @property
    def candidates(self) -> tuple[str, ...]:
        return self.versions[1:]


@dataclass(frozen=True)
class Observation:
    """Everything a strategy sees at one iteration."""

    iteration: int  # 1-based number of the iteration being decided
    elapsed: float  # seconds since the experiment's startTime (Iter8's elapsedTime basis)
    metrics: Mapping[str, Mapping[str, float | None]]  # metric ref -> version -> value (None = unavailable)
    # (name, weight) in status.currentWeightDistribution order, or None before any was read
    current_weights: tuple[tuple[str, int], ...] | None = None
    state: Mapping[str, Any] = field(default_factory=dict)
    messages: Mapping[str, str] = field(default_factory=dict)  # fetch errors/warnings per metric

    def value(self, metric: str, version: str) -> float | None:
        return self.metrics.get(metric, {}).get(version)


@dataclass(frozen=True)
class Decision:
    """One iteration's outcome. ``analysis`` is Iter8-shaped (status.analysis) when available."""

    weights: Mapping[str, int] | None  # recommended weight per version; None = leave as is
    winner: str | None = None
    assessments: Mapping[str, tuple[bool, ...]] = field(default_factory=dict)
    verdict: Verdict = "continue"
    reason: str = ""
    state: Mapping[str, Any] = field(default_factory=dict)
    analysis: Mapping[str, Any] = field(default_factory=dict)
    # What a rollback does to the weights: "apply" moves them to ``weights`` (all traffic to the
    # baseline when None), as Flagger and Argo do; "keep" leaves them as they are, as etc3 does
    # (its finish action restores traffic). The loop reads this, never the strategy's name.
    weights_on_rollback: Literal["apply", "keep"] = "apply"

    @property
    def winner_found(self) -> bool:
        return self.winner is not None


class Strategy(Protocol):
    """The policy protocol. Implementations are constructed once per run with the plan and their
    parameters (validated in ``__init__``; a bad parameter raises SpecError)."""

    name: str

    def decide(self, observation: Observation, rng: np.random.Generator) -> Decision: ...


StrategyFactory = Callable[[Plan, Mapping[str, Any]], Strategy]
_REGISTRY: dict[str, StrategyFactory] = {}
_DOCS: dict[str, str] = {}


def register(name: str, doc: str = "") -> Callable[[StrategyFactory], StrategyFactory]:
    """Class decorator: make a strategy selectable by name (``--strategy NAME``, scenario files)."""

    def wrap(factory: StrategyFactory) -> StrategyFactory:
        _REGISTRY[name] = factory
        _DOCS[name] = doc or ((factory.__doc__ or "").strip().splitlines() or [""])[0]
        return factory

    return wrap


def available() -> dict[str, str]:
    """Registered strategy names with their one-line descriptions."""
    _load_builtin()
    return dict(sorted(_DOCS.items()))


# Where a strategy's own parameter checks say the mistake is; :func:`create` replaces it with the
# place the parameters came from (a scenario's spec.strategy.params, a --strategy option, a file).
PARAMS_WHERE = Location("<strategy params>")


def create(
    name: str,
    plan: Plan,
    params: Mapping[str, Any] | None = None,
    where: Location | None = None,
    field_prefix: str = "spec.strategy.params.",
    *,
    field: str = "strategy",
) -> Strategy:
    """The strategy ``name`` for ``plan``; an unknown name is a SpecError at ``where``/``field``
    (the scenario's ``strategy``, or ``--strategy`` on the command line); a bad parameter is
    reported at ``where`` (field ``field_prefix + parameter``) when given."""
    _load_builtin()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise SpecError(
            where or Location("command line"),
            field,
            f"unknown strategy {name!r}; known: {', '.join(sorted(_REGISTRY))}",
        )
    try:
        return factory(plan, dict(params or {}))
    except SpecError as exc:
        if where is None or exc.where != PARAMS_WHERE:
            raise
        bad = f"{field_prefix}{exc.field}" if exc.field else field_prefix.rstrip(".") or None
        raise SpecError(where, bad, exc.message) from None


def _load_builtin() -> None:
    """Import the built-in strategy modules so that their @register lines run."""
    import importlib
    import pkgutil

    import simkit.strategies as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in ("base",) and not mod.name.startswith("_"):
            importlib.import_module(f"simkit.strategies.{mod.name}")
