"""Results of a PromQL query, independent of how they are rendered (HTTP JSON, tables, tests).

The engine (``simkit.promql.engine``) returns a :class:`QueryResult`; the in-process HTTP API
(``simkit.promql.api``) renders it exactly as Prometheus 2.42 does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

ResultType = Literal["vector", "scalar", "matrix", "string"]


@dataclass(frozen=True)
class InstantSample:
    """One element of an instant vector; ``metric`` has no ``__name__`` after most functions."""

    metric: dict[str, str]
    value: float


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range-query matrix (or a range-vector selector at the top level)."""

    metric: dict[str, str]
    timestamps: npt.NDArray[np.float64]  # Unix seconds, millisecond precision
    values: npt.NDArray[np.float64]


@dataclass(frozen=True)
class QueryResult:
    """What ``/api/v1/query`` or ``/api/v1/query_range`` would put under ``data``."""

    result_type: ResultType
    time: float  # evaluation time of an instant query (end time of a range query)
    vector: list[InstantSample] = field(default_factory=list)
    matrix: list[RangeSeries] = field(default_factory=list)
    scalar: float | None = None
    string: str | None = None

    def first_value(self) -> float | None:
        """The value Iter8's usual jq (``.data.result[0].value[1]``) would read, or None."""
        if self.result_type == "scalar":
            return self.scalar
        if self.result_type == "vector" and self.vector:
            return self.vector[0].value
        return None
