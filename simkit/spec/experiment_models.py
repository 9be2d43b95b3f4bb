"""Pydantic models of the Iter8 ``Experiment`` (``iter8.tools/v2alpha2``, etc3 v0.1.27).

Field names, enums and limits follow etc3's ``api/v2alpha2/experiment_types.go`` and the CRD:
``spec`` is strict (an unknown field is an error), ``status`` lenient
(:mod:`simkit.spec.experiment_status`). Loading, the cross-field checks etc3 makes at Running,
defaults and the views strategies need live in :mod:`simkit.spec.experiment`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator

from simkit.errors import Location, SpecError
from simkit.spec.experiment_status import ExperimentStatus, OptionalQuantity

TESTING_PATTERNS = ("Canary", "A/B", "A/B/N", "Conformance")
DEPLOYMENT_PATTERNS = ("FixedSplit", "Progressive", "BlueGreen")
DEFAULT_NAMESPACE = "default"

_REFERENCE = re.compile(r"^[^/\s]+(/[^/\s]+)?$")
# `.name` segments, each with at most one `[index]`, the last without one: exactly the paths
# for which etc3's textual conversion yields a well-formed JSON pointer.
FIELD_PATH_SYNTAX = re.compile(r"^(?:\.[^.\[\]/~\s]+(?:\[[0-9]+\])?)*\.[^.\[\]/~\s]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Quantity = OptionalQuantity  # objective limits: Kubernetes quantities such as "0.01" or 1k


def _check_reference(value: str) -> str:
    if not _REFERENCE.match(value):
        raise ValueError(f"expected a metric reference 'name' or 'namespace/name', found {value!r}")
    return value


MetricRef = Annotated[str, BeforeValidator(lambda v: _check_reference(v) if isinstance(v, str) else v)]


class ExperimentMeta(BaseModel):
    """Kubernetes metadata: name and namespace typed, everything else (labels, managedFields...) kept."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    name: str | None = None
    namespace: str | None = None


class NamedValue(_Strict):
    name: str = Field(min_length=1)
    value: str


class WeightObjRef(_Strict):
    api_version: str = Field(alias="apiVersion", min_length=1)
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str | None = None
    field_path: str = Field(default="", alias="fieldPath")


class VersionDetail(_Strict):
    name: str = Field(min_length=1)
    variables: tuple[NamedValue, ...] = ()
    weight_obj_ref: WeightObjRef | None = Field(default=None, alias="weightObjRef")


class VersionInfo(_Strict):
    baseline: VersionDetail
    candidates: tuple[VersionDetail, ...] = ()


class TaskSpec(_Strict):
    task: str = Field(min_length=1)
    with_: dict[str, Any] | None = Field(default=None, alias="with")


class Weights(_Strict):
    max_candidate_weight: int | None = Field(default=None, alias="maxCandidateWeight", ge=0, le=100)
    max_candidate_weight_increment: int | None = Field(
        default=None, alias="maxCandidateWeightIncrement", ge=0, le=100
    )


class Strategy(_Strict):
    testing_pattern: Literal["Canary", "A/B", "A/B/N", "Conformance"] = Field(alias="testingPattern")
    deployment_pattern: Literal["FixedSplit", "Progressive", "BlueGreen"] | None = Field(
        default=None, alias="deploymentPattern"
    )
    actions: dict[str, tuple[TaskSpec, ...]] = Field(default_factory=dict)
    weights: Weights | None = None

    @field_validator("testing_pattern", mode="before")
    @classmethod
    def _known_pattern(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in TESTING_PATTERNS:
            hint = " (the CRD spells it 'A/B/N')" if value.upper() == "A/B/N" else ""
            raise ValueError(
                f"unknown testing pattern {value!r}{hint}; expected one of {', '.join(TESTING_PATTERNS)}"
            )
        return value


class RewardSpec(_Strict):
    metric: MetricRef
    preferred_direction: Literal["High", "Low"] = Field(alias="preferredDirection")


class ObjectiveSpec(_Strict):
    metric: MetricRef
    upper_limit: Quantity = Field(default=None, alias="upperLimit")
    lower_limit: Quantity = Field(default=None, alias="lowerLimit")
    # etc3's JSON name really is snake_case (api/v2alpha2/experiment_types.go)
    rollback_on_failure: bool | None = None


class Criteria(_Strict):
    request_count: MetricRef | None = Field(default=None, alias="requestCount")
    rewards: tuple[RewardSpec, ...] = ()
    indicators: tuple[MetricRef, ...] = ()
    objectives: tuple[ObjectiveSpec, ...] = ()
    strength: Any = None  # reserved, ignored by Iter8 (§4.5)


class Duration(_Strict):
    interval_seconds: int | None = Field(default=None, alias="intervalSeconds", ge=1)
    iterations_per_loop: int | None = Field(default=None, alias="iterationsPerLoop", ge=1)
    max_loops: int | None = Field(default=None, alias="maxLoops", ge=1)


class ExperimentSpec(_Strict):
    target: str = Field(min_length=1)
    strategy: Strategy
    criteria: Criteria | None = None
    duration: Duration | None = None
    version_info: VersionInfo | None = Field(default=None, alias="versionInfo")


class Experiment(_Strict):
    api_version: Literal["iter8.tools/v2alpha2"] = Field(alias="apiVersion")
    kind: Literal["Experiment"]
    metadata: ExperimentMeta = Field(default_factory=ExperimentMeta)
    spec: ExperimentSpec
    status: ExperimentStatus | None = None

    _where: Location = PrivateAttr(default_factory=lambda: Location("<memory>"))
    _weights_given: bool = PrivateAttr(default=False)

    @property
    def where(self) -> Location:
        return self._where

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or DEFAULT_NAMESPACE

    def error(self, field: str | None, message: str) -> SpecError:
        return SpecError(self._where, field, message)
