"""The functions of PromQL 2.42 and their signatures (``promql/parser/functions.go``).

The parser checks every call against this table: argument count and types, return type. The
evaluation of each function lives in :mod:`simkit.promql.functions` and the modules it names.
"""

from __future__ import annotations

from simkit.promql.datefuncs import DATE_FUNCTIONS

_MATH_FUNCTIONS = [
    "abs",
    "ceil",
    "floor",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "cos",
    "cosh",
    "sin",
    "sinh",
    "tan",
    "tanh",
    "deg",
    "rad",
]
_RANGE_FUNCTIONS = [
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "changes",
    "resets",
    "deriv",
    "absent_over_time",
    "present_over_time",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "stddev_over_time",
    "stdvar_over_time",
]
# name -> (argument types, number of optional trailing args (-1: the last one repeats, and may be
# absent), return type): Prometheus 2.42's parser/functions.go
FUNCTIONS: dict[str, tuple[tuple[str, ...], int, str]] = {
    **{f: (("vector",), 0, "vector") for f in [*_MATH_FUNCTIONS, "sort", "sort_desc", "timestamp", "absent"]},
    **{f: (("matrix",), 0, "vector") for f in _RANGE_FUNCTIONS},
    **{f: (("vector",), 1, "vector") for f in sorted(DATE_FUNCTIONS)},
    "quantile_over_time": (("scalar", "matrix"), 0, "vector"),
    "predict_linear": (("matrix", "scalar"), 0, "vector"),
    "holt_winters": (("matrix", "scalar", "scalar"), 0, "vector"),
    "histogram_quantile": (("scalar", "vector"), 0, "vector"),
    "round": (("vector", "scalar"), 1, "vector"),
    "clamp": (("vector", "scalar", "scalar"), 0, "vector"),
    "clamp_min": (("vector", "scalar"), 0, "vector"),
    "clamp_max": (("vector", "scalar"), 0, "vector"),
    "vector": (("scalar",), 0, "vector"),
    "scalar": (("vector",), 0, "scalar"),
    "time": ((), 0, "scalar"),
    "pi": ((), 0, "scalar"),
    "label_replace": (("vector", "string", "string", "string", "string"), 0, "vector"),
    "label_join": (("vector", "string", "string", "string"), -1, "vector"),
}
# Functions of 2.42 that only act on native histograms (out of simkit's scope): a clear error.
UNSUPPORTED_FUNCTIONS = frozenset(["histogram_count", "histogram_sum", "histogram_fraction"])

__all__ = ["FUNCTIONS", "UNSUPPORTED_FUNCTIONS"]
