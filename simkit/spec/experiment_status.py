"""``status`` of an Iter8 ``Experiment``, parsed leniently because it comes from real clusters.

The spec of an Experiment is something a user writes, so it is strict (see
:mod:`simkit.spec.experiment`). The status is written by etc3 and iter8-analytics, differs a
little between their versions, and is mostly read back for reports, so unknown fields are kept
rather than rejected. Types are still checked where a wrong type would mislead: metric values
and limits must be Kubernetes quantities or numbers (``24804743n``, ``"0"``, ``0.5``), weights
must be integers, and assessments must be booleans.

Field names follow etc3's ``api/v2alpha2/experiment_types.go`` (iter8-v2.md §1, §2.4).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from simkit.spec.quantity import parse_quantity


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


def _as_optional_quantity(value: Any) -> float | None:
    """A Kubernetes quantity; NaN and infinities (``.nan``, ``1e999``) have no quantity form, so
    neither etc3 nor iter8ctl could hold them: bad input, named by its field."""
    if value is None:
        return None
    number = parse_quantity(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite quantity")
    return number


OptionalQuantity = Annotated[float | None, BeforeValidator(_as_optional_quantity)]


def _as_time(value: Any) -> Any:
    # An unquoted RFC 3339 timestamp in hand-written YAML arrives as a datetime; keep the text form.
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return value


Time = Annotated[str | None, BeforeValidator(_as_time)]


class VersionMetric(_Lenient):
    """One version's value of one metric (analytics fills only ``value``)."""

    value: OptionalQuantity = None
    max: OptionalQuantity = None
    min: OptionalQuantity = None
    sample_size: OptionalQuantity = Field(default=None, alias="sampleSize")


class AggregatedMetric(_Lenient):
    data: dict[str, VersionMetric] = Field(default_factory=dict)
    max: OptionalQuantity = None
    min: OptionalQuantity = None


class _Part(_Lenient):
    """What etc3 stamps on every analysis part."""

    message: str | None = None
    provenance: str | None = None
    timestamp: Time = None


class AggregatedMetricsAnalysis(_Part):
    data: dict[str, AggregatedMetric] = Field(default_factory=dict)


class VersionAssessmentsAnalysis(_Part):
    data: dict[str, tuple[bool, ...]] = Field(default_factory=dict)


class WinnerAssessmentData(_Lenient):
    winner_found: bool = Field(default=False, alias="winnerFound")
    winner: str | None = None
    # analytics returns bestVersions; etc3's Go struct drops it when storing the status
    best_versions: tuple[str, ...] | None = Field(default=None, alias="bestVersions")


class WinnerAssessmentAnalysis(_Part):
    data: WinnerAssessmentData = Field(default_factory=WinnerAssessmentData)


class WeightData(_Lenient):
    name: str
    value: int


class WeightsAnalysis(_Part):
    data: tuple[WeightData, ...] = ()


class Analysis(_Lenient):
    aggregated_metrics: AggregatedMetricsAnalysis | None = Field(default=None, alias="aggregatedMetrics")
    version_assessments: VersionAssessmentsAnalysis | None = Field(default=None, alias="versionAssessments")
    winner_assessment: WinnerAssessmentAnalysis | None = Field(default=None, alias="winnerAssessment")
    weights: WeightsAnalysis | None = None
    aggregated_builtin_hists: Any = Field(default=None, alias="aggregatedBuiltinHists")


class Condition(_Lenient):
    type: str
    status: str
    last_transition_time: Time = Field(default=None, alias="lastTransitionTime")
    reason: str | None = None
    message: str | None = None


class MetricInfo(_Lenient):
    """An entry of ``status.metrics``: the reference as written in criteria plus the Metric object."""

    name: str
    metric_obj: dict[str, Any] = Field(default_factory=dict, alias="metricObj")

    @property
    def units(self) -> str | None:
        spec = self.metric_obj.get("spec")
        units = spec.get("units") if isinstance(spec, dict) else None
        return str(units) if units is not None else None


class ExperimentStatus(_Lenient):
    analysis: Analysis | None = None
    current_weight_distribution: tuple[WeightData, ...] | None = Field(
        default=None, alias="currentWeightDistribution"
    )
    conditions: tuple[Condition, ...] = ()
    stage: str | None = None
    completed_iterations: int | None = Field(default=None, alias="completedIterations")
    init_time: Time = Field(default=None, alias="initTime")
    start_time: Time = Field(default=None, alias="startTime")
    last_update_time: Time = Field(default=None, alias="lastUpdateTime")
    version_recommended_for_promotion: str | None = Field(
        default=None, alias="versionRecommendedForPromotion"
    )
    message: str | None = None
    metrics: tuple[MetricInfo, ...] = ()

    def metric_values(self) -> dict[str, dict[str, float | None]]:
        """``status.analysis.aggregatedMetrics`` as metric -> version -> value (None = unavailable)."""
        agg = self.analysis.aggregated_metrics if self.analysis else None
        if agg is None:
            return {}
        return {m: {v: vm.value for v, vm in am.data.items()} for m, am in agg.data.items()}

    def weight_pairs(self) -> tuple[tuple[str, int], ...] | None:
        """``currentWeightDistribution`` as (name, value) pairs in status order, or None."""
        if self.current_weight_distribution is None:
            return None
        return tuple((w.name, w.value) for w in self.current_weight_distribution)
