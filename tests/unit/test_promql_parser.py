"""Parser: precedence, literals, selectors, modifiers, and errors with their positions."""

from __future__ import annotations

import math

import pytest

from simkit.errors import QueryError
from simkit.promql import parse
from simkit.promql.ast import (
    AggregateExpr,
    BinaryExpr,
    Call,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    UnaryExpr,
    VectorSelector,
)
from simkit.tsdb import Matcher


def _num(expr: object) -> float:
    assert isinstance(expr, NumberLiteral)
    return expr.value


def test_arithmetic_precedence_and_associativity() -> None:
    e = parse("1 + 2 * 3")
    assert isinstance(e, BinaryExpr) and e.op == "+"
    assert isinstance(e.rhs, BinaryExpr) and e.rhs.op == "*"
    e = parse("10 - 4 - 3")  # left-assoc: (10-4)-3
    assert isinstance(e, BinaryExpr) and isinstance(e.lhs, BinaryExpr) and _num(e.rhs) == 3
    e = parse("2 ^ 3 ^ 2")  # right-assoc: 2^(3^2)
    assert isinstance(e, BinaryExpr) and _num(e.lhs) == 2 and isinstance(e.rhs, BinaryExpr)


def test_unary_minus_binds_like_multiplication() -> None:
    e = parse("-a ^ 2")  # -(a^2)
    assert isinstance(e, UnaryExpr) and isinstance(e.expr, BinaryExpr) and e.expr.op == "^"
    e = parse("-a * 2")  # (-a)*2
    assert isinstance(e, BinaryExpr) and e.op == "*" and isinstance(e.lhs, UnaryExpr)
    assert _num(parse("-5")) == -5


def test_set_and_comparison_precedence() -> None:
    e = parse("a or b and c unless d")
    assert isinstance(e, BinaryExpr) and e.op == "or"
    assert isinstance(e.rhs, BinaryExpr) and e.rhs.op == "unless"
    assert isinstance(e.rhs.lhs, BinaryExpr) and e.rhs.lhs.op == "and"
    e = parse("a + 1 > bool b * 2")
    assert isinstance(e, BinaryExpr) and e.op == ">" and e.return_bool


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x1F", 31.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("Inf", math.inf),
        ("-inf", -math.inf),
        ("1.5E-1", 0.15),
    ],
)
def test_number_literals(text: str, value: float) -> None:
    assert _num(parse(text)) == value


def test_nan_literal() -> None:
    assert math.isnan(_num(parse("NaN")))


def test_strings_with_escapes_and_quotes() -> None:
    e = parse(r'"a\"b\n\x41\u00e9"')
    assert isinstance(e, StringLiteral) and e.value == 'a"b\nAé'
    e = parse(r"'it\'s'")
    assert isinstance(e, StringLiteral) and e.value == "it's"
    e = parse(r"`raw\n`")
    assert isinstance(e, StringLiteral) and e.value == "raw\\n"


def test_selector_matchers() -> None:
    e = parse("""foo{a="1", b!='2', c=~`x.*`, d!~"y",}""")
    assert isinstance(e, VectorSelector) and e.name == "foo"
    assert e.matchers == (
        Matcher("__name__", "=", "foo"),
        Matcher("a", "=", "1"),
        Matcher("b", "!=", "2"),
        Matcher("c", "=~", "x.*"),
        Matcher("d", "!~", "y"),
    )
    e = parse('{__name__=~"seldon_.*"}')
    assert isinstance(e, VectorSelector) and e.name is None and e.matchers[0].op == "=~"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("5m", 300_000),
        ("1h30m", 5_400_000),
        ("15s", 15_000),
        ("250ms", 250),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
        ("31s", 31_000),
    ],
)
def test_range_durations(text: str, ms: int) -> None:
    e = parse(f"foo[{text}]")
    assert isinstance(e, MatrixSelector) and e.range_ms == ms


def test_offset_and_at_modifiers() -> None:
    e = parse("foo offset -5m")
    assert isinstance(e, VectorSelector) and e.offset_ms == -300_000
    e = parse("foo[1m] offset 1h @ 1500.5")
    assert (
        isinstance(e, MatrixSelector) and e.selector.offset_ms == 3_600_000 and e.selector.at_ms == 1_500_500
    )
    e = parse("rate(foo[1m] @ start())")
    assert (
        isinstance(e, Call)
        and isinstance(e.args[0], MatrixSelector)
        and e.args[0].selector.at_edge == "start"
    )


def test_aggregation_modifier_before_or_after() -> None:
    for text in ("sum by (le, a) (rate(x[1m]))", "sum(rate(x[1m])) by (le, a)"):
        e = parse(text)
        assert isinstance(e, AggregateExpr) and e.grouping == ("le", "a") and not e.without
    e = parse("topk without (a) (3, x)")
    assert isinstance(e, AggregateExpr) and e.without and _num(e.param) == 3
    e = parse("count_values('v', x)")
    assert isinstance(e, AggregateExpr) and isinstance(e.param, StringLiteral)


def test_vector_matching_modifiers() -> None:
    e = parse("a * on(x, y) group_left(z) b")
    assert isinstance(e, BinaryExpr) and e.matching is not None
    assert (e.matching.card, e.matching.on, e.matching.labels, e.matching.include) == (
        "many-to-one",
        True,
        ("x", "y"),
        ("z",),
    )
    e = parse("a / ignoring(code) group_right b")
    assert isinstance(e, BinaryExpr) and e.matching is not None and e.matching.card == "one-to-many"
    e = parse("a or on() vector(0)")
    assert isinstance(e, BinaryExpr) and e.matching is not None and e.matching.card == "many-to-many"


def test_bare_on_with_a_scalar_side_is_dropped() -> None:
    # Prometheus 2.42 only rejects matching labels against a scalar; an empty on() is ignored
    e = parse("time() + on() group_left foo")
    assert isinstance(e, BinaryExpr) and e.matching is None


def test_seed_query_with_trailing_newline() -> None:
    q = (
        "(sum(increase(seldon_api_executor_client_requests_seconds_sum{seldon_deployment_id='iris',"
        "predictor_name='baseline',kubernetes_namespace='ns-production'}[31s])) or on() vector(0)) / "
        "(sum(increase(seldon_api_executor_client_requests_seconds_count{seldon_deployment_id='iris',"
        "predictor_name='baseline',kubernetes_namespace='ns-production'}[31s])) or on() vector(0))\n  \n"
    )
    e = parse(q)
    assert isinstance(e, BinaryExpr) and e.op == "/" and isinstance(e.lhs, ParenExpr)


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("histogram_count(foo)", "unsupported function 'histogram_count'", 0),
        ("histogram_stddev(foo)", "unknown function with name 'histogram_stddev'", 0),
        ("sum(rate(foo[5m]) by (le)", "unexpected 'by'", 18),
        ("sum(rate(foo[5m])))", "unexpected ')'", 18),
        ("nosuchfn(foo)", "unknown function with name 'nosuchfn'", 0),
        ("rate(foo[5m:1m][10m:1m])", "subquery is only allowed on instant vector, got range vector", 15),
        ("rate(foo[5m:0s])", "step must be greater than 0", 12),
        ("foo[5m:1m:1m]", "unexpected ':'", 9),
        ("sum(foo)[5m:1m] offset 1m offset 2m", "offset may not be set multiple times", 26),
        (
            "label_join(foo, 'a')",
            "wrong number of arguments in call to 'label_join': got 2, expected 3 or more",
            0,
        ),
        ('foo{a="b}', "unterminated quoted string", 6),
        ("foo{a=~'('}", "invalid regular expression", 7),
        ('{a=""}', "at least one non-empty matcher", 0),
        ("1 > 2", "comparisons between scalars must use BOOL modifier", 2),
        ("foo[5m] + 1", "binary expression must contain only scalar and instant vector types", 0),
        ("rate(foo)", "expected type range vector in call to function 'rate', got instant vector", 5),
        ("sum(foo) offset 5m", "offset modifier must be preceded by", 9),
        ("1 and foo", "set operator 'and' not allowed in binary scalar expression", 2),
        ("topk('a', foo)", "expected type scalar in aggregation parameter", 5),
        ("foo{__name__='bar'}", "metric name must not be set twice", 4),
        ("foo + bool bar", "bool modifier can only be used on comparison operators", 4),
        ("", "no expression found in input", 0),
        ("foo offset 5x", "bad number or duration syntax", 11),
        ("histogram_quantile(0.9)", "wrong number of arguments in call to 'histogram_quantile'", 0),
        ("a and on(x) group_left b", "no grouping allowed for 'and' operation", 12),
        ("a + on(x) 1", "vector matching only allowed between instant vectors", 2),
        ("foo !", "unexpected character '!'", 4),
        ("(foo", "unexpected end of input", 4),
    ],
)
def test_errors_name_construct_and_position(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as info:
        parse(query)
    assert message in info.value.message
    assert info.value.position == position
    assert f"at position {position}" in str(info.value)
