"""The ``Scenario`` document (``simkit/v1alpha1``): the simulated world around real manifests.

A scenario names the manifests a user would ``kubectl apply`` (kept byte-for-byte) and describes
what Kubernetes cannot: how each predictor behaves (latency, errors, capacity, user feedback),
the load that hits it, incidents on a timeline, and what the run is expected to conclude.
Every field is strict: an unknown field is an error naming file, document and field.
Durations accept ``90s``, ``1m30s``, ``250ms`` or plain seconds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from simkit.spec.quantity import parse_duration


def _duration(v: Any) -> float:
    try:
        return parse_duration(v)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[float, BeforeValidator(_duration)]


# One load generator's rate at most: an .inf or 1e999 would never return. The counts engine's cost
# does not grow with traffic (and auto takes it wherever it is equivalent), so the bound is a
# sanity one: a calibrated recording of `simkit serve --speed 20` at 2,000 qps is 40,000 calls
# per wall-clock second. The events engine at such rates runs hours (README, "Two engines").
MAX_QPS = 1_000_000.0


class _Strict(BaseModel):
    # allow_inf_nan: a scenario number is a rate, a duration or a probability, never .inf/.nan
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


DistName = Literal[
    "lognormal", "gamma", "exponential", "constant", "uniform", "empirical", "mixture", "normal"
]


class HistogramSpec(_Strict):
    bounds: list[Duration] = Field(min_length=1)  # upper bounds; the first bucket starts at 0
    counts: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> HistogramSpec:
        if len(self.counts) != len(self.bounds):
            raise ValueError("counts must have one entry per bound")
        if any(b2 <= b1 for b1, b2 in zip(self.bounds, self.bounds[1:], strict=False)):
            raise ValueError("bounds must increase")
        if any(c < 0 for c in self.counts) or sum(self.counts) <= 0:
            raise ValueError("counts must be >= 0 with a positive total")
        return self


class _Params(_Strict):
    """The parameters every distribution family draws from (which ones a family needs:
    :func:`distribution_problem`)."""

    distribution: DistName
    median: Duration | None = None
    p99: Duration | None = None
    mu: float | None = None
    sigma: float | None = Field(default=None, ge=0)
    mean: Duration | None = None
    cv: float | None = Field(default=None, gt=0)
    shape: float | None = Field(default=None, gt=0)
    scale: Duration | None = None
    value: Duration | None = None
    low: Duration | None = None
    high: Duration | None = None
    std: Duration | None = None
    samples: list[Duration] | None = None
    histogram: HistogramSpec | None = None


class Component(_Params):
    """One weighted part of a mixture."""

    weight: float = Field(gt=0)


class Distribution(_Params):
    """A positive random duration. Parameters by family:

    lognormal: median + p99, or mu + sigma (of log seconds), or mean + cv; gamma: shape + scale, or
    mean + cv; exponential: mean; constant: value; uniform: low + high; normal (truncated at 0):
    mean + std; empirical: samples, or histogram (uniform inside buckets); mixture: components.
    ``factor`` multiplies every draw.
    """

    components: list[Component] | None = None
    factor: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Distribution:
        problem = distribution_problem(self)
        if problem:
            raise ValueError(problem)
        return self


def distribution_problem(d: Distribution | Component) -> str | None:
    """Which parameters a family needs; None when ``d`` is complete and consistent."""
    name = d.distribution
    if name == "lognormal":
        if d.median is not None and d.p99 is not None:
            if not 0 < d.median < d.p99:
                return "lognormal needs 0 < median < p99"
        elif d.mu is not None and d.sigma is not None:
            pass
        elif d.mean is not None and d.cv is not None:
            if d.mean <= 0:
                return "lognormal mean must be > 0"
        else:
            return "lognormal needs median and p99, mu and sigma, or mean and cv"
    elif name == "gamma":
        if not ((d.shape is not None and d.scale is not None) or (d.mean is not None and d.cv is not None)):
            return "gamma needs shape and scale, or mean and cv"
    elif name == "exponential":
        if d.mean is None or d.mean <= 0:
            return "exponential needs mean > 0"
    elif name == "constant":
        if d.value is None or d.value < 0:
            return "constant needs value >= 0"
    elif name == "uniform":
        if d.low is None or d.high is None or not 0 <= d.low <= d.high:
            return "uniform needs 0 <= low <= high"
    elif name == "normal":
        if d.mean is None or d.std is None:
            return "normal needs mean and std"
    elif name == "empirical":
        if (d.samples is None) == (d.histogram is None):
            return "empirical needs exactly one of samples or histogram"
        if d.samples is not None and (not d.samples or min(d.samples) < 0):
            return "empirical samples must be a non-empty list of non-negative durations"
    elif name == "mixture":
        comps = getattr(d, "components", None)
        if not comps:
            return "mixture needs components"
        for i, c in enumerate(comps):
            if c.distribution == "mixture":
                return f"components[{i}]: nested mixtures are not supported"
            problem = distribution_problem(c)
            if problem:
                return f"components[{i}]: {problem}"
    return None


class Errors(_Strict):
    """Error responses: one ``rate`` with one ``code``, or a rate per status ``codes``."""

    rate: float = Field(default=0.0, ge=0, le=1)
    code: str = "500"
    codes: dict[str, float] | None = None

    @model_validator(mode="after")
    def _check(self) -> Errors:
        if self.codes is not None:
            if self.rate:
                raise ValueError("give either rate (with code) or codes, not both")
            if any(not (0 <= r <= 1) for r in self.codes.values()) or sum(self.codes.values()) > 1:
                raise ValueError("codes rates must be in [0, 1] and sum to at most 1")
            if any(not c.isdigit() for c in self.codes):
                raise ValueError("codes keys must be HTTP status codes such as '500'")
        elif not self.code.isdigit():
            raise ValueError("code must be an HTTP status code such as '500'")
        return self

    def table(self) -> list[tuple[str, float]]:
        if self.codes is not None:
            return [(c, r) for c, r in sorted(self.codes.items()) if r > 0]
        return [(self.code, self.rate)] if self.rate > 0 else []


class Feedback(_Strict):
    """Per-prediction feedback: user engagement that follows traffic."""

    probability: float = Field(ge=0, le=1)
    delay: Distribution = Field(default_factory=lambda: Distribution(distribution="constant", value=0.0))
    reward: float = 1.0


class Behaviour(_Strict):
    """How one predictor behaves; every field may be changed by an event."""

    replicas: int | None = Field(default=None, ge=0)  # default: from the SeldonDeployment
    concurrency: int = Field(default=4, ge=1)
    latency: Distribution = Field(
        default_factory=lambda: Distribution(distribution="lognormal", median=0.010, p99=0.040)
    )
    feedbackLatency: Distribution = Field(
        default_factory=lambda: Distribution(distribution="constant", value=0.002)
    )
    latencyFactor: float = Field(default=1.0, gt=0)  # a slow replica, a noisy neighbour
    loadFactor: float = Field(default=0.0, ge=0)  # latency *= 1 + loadFactor * utilisation
    errors: Errors = Field(default_factory=Errors)
    feedback: Feedback | None = None
    modelVersion: str = "1.18.2"


class Load(_Strict):
    """A load generator. ``to`` is one of: ``ingress:NS/SDEP`` (split by the SeldonDeployment's
    traffic), ``virtualservice:NS/NAME`` (split by its http[0] route weights),
    ``predictor:NS/SDEP/PREDICTOR`` (direct predictions), ``feedback:NS/SDEP/PREDICTOR`` (direct
    feedback, as the seed's fortio jobs send it), ``feedback:NS/SDEP`` (feedback via the ingress)."""

    name: str
    to: str
    qps: float = Field(default=1.0, ge=0, le=MAX_QPS)
    pattern: Literal["uniform", "poisson", "ramp", "diurnal", "trace"] = "uniform"
    start: Duration = 0.0
    end: Duration | None = None
    qpsEnd: float | None = Field(default=None, ge=0, le=MAX_QPS)  # ramp: qps at `end`
    period: Duration = 86400.0  # diurnal
    amplitude: float = Field(default=0.5, ge=0, le=1)
    phase: Duration = 0.0
    arrivals: Literal["uniform", "poisson"] | None = None  # ramp/diurnal spacing (default poisson)
    file: str | None = None  # trace: one timestamp (seconds from `start`) per line
    payload: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Load:
        kind, _, target = self.to.partition(":")
        if kind not in ("ingress", "virtualservice", "predictor", "feedback") or not target:
            raise ValueError(
                f"to must be ingress:NS/SDEP, virtualservice:NS/NAME, predictor:NS/SDEP/P or feedback:NS/SDEP[/P] (got {self.to!r})"
            )
        if self.pattern == "ramp" and (self.end is None or self.qpsEnd is None):
            raise ValueError("a ramp needs end and qpsEnd")
        if self.pattern == "trace" and not self.file:
            raise ValueError("a trace needs file")
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Event(_Strict):
    """A change on the timeline: ``set`` new behaviour fields on a predictor (or new fields on a
    load generator) at ``at``; with ``duration`` the old values come back afterwards."""

    at: Duration
    predictor: str | None = None
    load: str | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    duration: Duration | None = Field(default=None, gt=0)
    name: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Event:
        if (self.predictor is None) == (self.load is None):
            raise ValueError("an event names exactly one of predictor or load")
        if not self.set:
            raise ValueError("an event needs a non-empty set")
        return self


class PrometheusSettings(_Strict):
    scrapeInterval: Duration = Field(default=15.0, gt=0)
    scrapeOffset: Duration = 0.0
    # Prometheus label -> template over {deployment} {namespace} {predictor} {pod}; the
    # seldon-core-analytics relabelling gives these two (PodMonitor set-ups would differ).
    targetLabels: dict[str, str] = Field(
        default_factory=lambda: {
            "seldon_deployment_id": "{deployment}",
            "kubernetes_namespace": "{namespace}",
        }
    )
    executorOverhead: Duration = Field(default=0.0005, ge=0)  # server latency = client + this


def _delay(v: Any) -> Any:
    """A plain duration (``3s``, ``250ms``, ``2.5``) is a constant delay; a mapping is a Distribution."""
    if isinstance(v, int | float | str) and not isinstance(v, bool):
        return {"distribution": "constant", "value": v}
    return v


class ControllerTiming(_Strict):
    """What a real controller adds to each iteration on top of ``intervalSeconds``.

    etc3 requeues ``intervalSeconds`` after it finished reconciling, and a reconcile waits for the
    analytics service (which runs the Metric queries): so consecutive iterations of a real run are
    ``intervalSeconds + iterationDelay`` apart, which lengthens ``elapsedTime`` and every metric
    window. The seed's recorded run took 183 s for 14 intervals of 10 s (3.07 s per iteration).
    Unset (the default), iterations are exactly ``intervalSeconds`` apart, as before.
    """

    iterationDelay: Annotated[Distribution, BeforeValidator(_delay)] | None = None


class StrategySpec(_Strict):
    name: str = "iter8"
    params: dict[str, Any] = Field(default_factory=dict)


class ScenarioSpec(_Strict):
    manifests: list[str] = Field(default_factory=list)
    experiment: str | None = None
    start: str = "2021-06-15T15:20:18Z"
    seed: int = Field(default=1, ge=0, lt=2**63)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    predictors: dict[str, Behaviour] = Field(default_factory=dict)
    load: list[Load] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    strategy: StrategySpec | None = None
    actionDelay: Duration = Field(default=0.0, ge=0)  # sim time a finish/loop action takes
    # which simulation engine: events (SimPy, per request), counts (per scrape), auto (counts
    # where equivalent; simkit.sim.engine)
    engine: Literal["events", "counts", "auto"] = "auto"
    controller: ControllerTiming = Field(default_factory=ControllerTiming)
    expect: dict[str, Any] = Field(default_factory=dict)
    truth: dict[str, Any] = Field(default_factory=dict)


class ScenarioMetadata(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    description: str | None = None


class ScenarioDoc(_Strict):
    apiVersion: Literal["simkit/v1alpha1"]
    kind: Literal["Scenario"]
    metadata: ScenarioMetadata
    spec: ScenarioSpec
