"""Which raw series an Experiment's metric queries read: the vector selectors inside them.

A recording must hold the *raw* series behind every Metric, not the Metrics' final values: the
loop re-runs each query at every replayed iteration with its own ``elapsedTime``, and
``increase``/``rate`` are only reproduced exactly from the same raw samples. So for every Metric
and every version the query is templated exactly as the fetcher templates it (version variables
substituted, ``elapsedTime`` set to any value: it only appears in range durations), parsed with
simkit's PromQL parser, and every :class:`~simkit.promql.ast.VectorSelector` in the tree is kept
with its label matchers. Offsets and ``@`` modifiers are dropped: the recorded time range decides
which samples are pulled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from simkit.control import Prepared
from simkit.errors import QueryError, SpecError
from simkit.metrics.template import render_params, version_arguments
from simkit.promql import parse
from simkit.promql.ast import Expr, VectorSelector
from simkit.tsdb import Matcher

# any positive number will do: elapsedTime only ever sizes a range selector
_ANY_ELAPSED = 60.0


@dataclass(frozen=True)
class MetricSelectors:
    """The selectors one Metric's query reads for one version."""

    metric: str  # the reference as written in the Experiment
    version: str
    query: str
    selectors: tuple[tuple[Matcher, ...], ...]

    def names(self) -> set[str]:
        return {m.value for sel in self.selectors for m in sel if m.name == "__name__" and m.op == "="}


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of a PromQL tree, depth first (fields that are nodes or tuples of nodes)."""
    yield node
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Expr):
            yield from walk(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Expr):
                    yield from walk(item)


def query_selectors(query: str) -> list[tuple[Matcher, ...]]:
    """The matchers of every vector selector in ``query`` (parse errors are QueryErrors)."""
    return [n.matchers for n in walk(parse(query)) if isinstance(n, VectorSelector)]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def format_selector(matchers: tuple[Matcher, ...]) -> str:
    """``{__name__="x",a="b",code!="200"}``: the selector as Prometheus' API accepts it."""
    return "{" + ",".join(f"{m.name}{m.op}{_quote(m.value)}" for m in matchers) + "}"


def metric_selectors(prepared: Prepared) -> list[MetricSelectors]:
    """For every Metric (status.metrics order) and version, the selectors its query reads.

    Mocked and builtin metrics read nothing; a metric without a ``query`` param (a POST body
    query) cannot be recorded and is a SpecError naming it.
    """
    out: list[MetricSelectors] = []
    for ref, metric in prepared.metrics:
        spec = metric.spec
        if spec.is_mocked or spec.is_builtin:
            continue
        for version in prepared.plan.versions:
            variables = prepared.metric_variables[version]
            query = render_params(spec, version_arguments(version, variables, _ANY_ELAPSED)).get("query")
            if query is None:
                raise metric.error(
                    "spec.params",
                    "no 'query' parameter: simkit records the series of "
                    "Prometheus queries given as the 'query' param",
                )
            try:
                sels = query_selectors(query)
            except QueryError as exc:
                raise SpecError(metric.where, "spec.params[query]", f"version {version}: {exc}") from None
            out.append(MetricSelectors(ref, version, query, tuple(sels)))
    return out


def unique_selectors(found: list[MetricSelectors]) -> list[str]:
    """The distinct selector strings, in first-seen order (a stable, reproducible pull order)."""
    seen: dict[str, None] = {}
    for ms in found:
        for sel in ms.selectors:
            seen.setdefault(format_selector(sel), None)
    return list(seen)
