"""PromQL subset with Prometheus 2.42's semantics: parse, then evaluate over a TSDB.

``parse(query)`` gives a syntax tree (or a QueryError naming the construct and its position);
``instant_query`` and ``range_query`` answer like ``/api/v1/query`` and ``/api/v1/query_range``.
"""

from simkit.promql.ast import Expr
from simkit.promql.engine import instant_query, range_query
from simkit.promql.parser import parse

__all__ = ["Expr", "instant_query", "parse", "range_query"]
