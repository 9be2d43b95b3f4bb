"""What a Metric measures, from its name and query text (shared by the truth and the evidence).

The mapping is documented in simkit.bench.truth: error rates by name, latency in milliseconds
when the query multiplies by 1000, a quantile from ``histogram_quantile(q, ...)`` or the name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from simkit.spec.bundle import Bundle
from simkit.spec.metric import Metric
from simkit.spec.scenario import Behaviour, Distribution

QUANTILE = re.compile(r"histogram_quantile\(\s*([0-9.]+)")
MILLIS = re.compile(r"(^|[^\d.])1000\s*\*|\*\s*1000($|[^\d.])")


def error_rate(b: Behaviour) -> float:
    return float(sum(rate for _, rate in b.errors.table()))


def feedback_streams(bundle: Bundle, key: str) -> tuple[float, float]:
    """(qps of fixed-rate feedback streams sent straight to ``key``, total ingress prediction qps)."""
    fixed = sum(ld.qps for ld in bundle.scenario.spec.load if ld.to == f"feedback:{key}")
    ingress = sum(
        ld.qps for ld in bundle.scenario.spec.load if ld.to.split(":")[0] in ("ingress", "virtualservice")
    )
    return float(fixed), float(ingress)


def query_text(metric: Metric) -> str:
    return " ".join(p.value for p in (metric.spec.params or ()))


def quantile_of(name: str, query: str) -> float | None:
    found = QUANTILE.search(query)
    if found:
        return float(found.group(1))
    if not any(tag in name for tag in ("percentile", "quantile", "tail", "p9", "p5")):
        return None
    digits = re.search(r"(\d+(?:\.\d+)?)", name)
    return float(digits.group(1)) / 100.0 if digits else 0.95


def scaled(d: Distribution, factor: float) -> Distribution:
    return d if factor == 1.0 else d.model_copy(update={"factor": d.factor * factor})


def is_error_rate(name: str) -> bool:
    return "error-rate" in name or "error_rate" in name or "errorrate" in name


def reads_sum(metrics: Mapping[str, Metric], reward_refs: set[str]) -> bool:
    """Whether a reward metric sums the feedback's reward values (else it counts feedback calls)."""
    return any("reward_total" in query_text(metrics[r]) for r in reward_refs if r in metrics)
