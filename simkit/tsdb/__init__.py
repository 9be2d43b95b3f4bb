"""In-memory Prometheus-like time-series storage and its OpenMetrics form."""

from simkit.tsdb.openmetrics import load_openmetrics, read_openmetrics, save_openmetrics, write_openmetrics
from simkit.tsdb.regex import Regex, RegexError, compile_regex
from simkit.tsdb.store import TSDB, Labels, Matcher, Series, canonical_labels, format_labels, round_ms

__all__ = [
    "TSDB",
    "Labels",
    "Matcher",
    "Regex",
    "RegexError",
    "compile_regex",
    "Series",
    "canonical_labels",
    "format_labels",
    "round_ms",
    "load_openmetrics",
    "read_openmetrics",
    "save_openmetrics",
    "write_openmetrics",
]
