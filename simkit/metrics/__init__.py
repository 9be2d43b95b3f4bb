"""The Metric CRD pipeline: resolve references, template, send over httpx, extract with jq.

One implementation serves the simulation and live runs; only the ``httpx.Client`` transport
differs (iter8-v2.md §3, DESIGN.md §1).
"""

from simkit.metrics.fetch import MetricFetcher, MetricValue, iter8_error_text, override_base_url
from simkit.metrics.mock import mock_value
from simkit.metrics.resolve import index_metrics, resolve_metric_refs
from simkit.metrics.template import substitute, version_arguments

__all__ = [
    "MetricFetcher",
    "MetricValue",
    "index_metrics",
    "iter8_error_text",
    "mock_value",
    "override_base_url",
    "resolve_metric_refs",
    "substitute",
    "version_arguments",
]
