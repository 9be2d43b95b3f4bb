"""A runner for Prometheus' promqltest format (``promql/testdata/*.test``), as 2.42's test.go runs it.

Commands: ``load <step>`` followed by series descriptions (``metric{l="v"} 1+2x3 _ stale``),
``clear``, and ``eval[_fail|_ordered] instant at <duration> <query>`` followed by the expected
samples (or one number for a scalar result). Evaluation follows ``promql/test.go`` of 2.42:

- every ``eval`` runs the query as written at its time and, unless it calls a function whose
  result depends on the evaluation time (``AtModifierUnsafeFunctions``), also with ``@ <time>``
  put on every selector and subquery outside subqueries that carry an ``@`` already, at the
  extra times ``-10t, 0, t/5, t, 10t`` (``-1s, 0, 1s`` when ``t`` is 0);
- each of those instant queries is also run as a range query from one minute before to one
  minute after, step 1m, and the middle step must give the same answer (not for ``eval_ordered``);
- values compare with 1e-6 relative error (NaN equals NaN), label sets exactly, and for
  ``eval_ordered`` the positions too; ``eval_fail`` needs an evaluation error, and the query must
  still parse (Prometheus' harness refuses a file whose queries do not parse).

The ``@`` variants are built on simkit's syntax tree (Prometheus prints its tree back to a string
and parses that again: the same expression).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simkit.errors import QueryError
from simkit.promql import instant_query, parse, range_query
from simkit.promql.ast import Call, Expr, MatrixSelector, SubqueryExpr, VectorSelector
from simkit.promql.lexer import parse_duration_ms
from simkit.promql.types import go_parse_float
from simkit.tsdb import TSDB, canonical_labels

EPSILON = 1e-6
MIN_NORMAL = 2.2250738585072014e-308  # math.Float64frombits(0x0010000000000000)
STALE_NAN = float(np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0])
# promql/engine.go: functions whose result varies with the evaluation time for step-invariant args
AT_MODIFIER_UNSAFE = frozenset(
    [
        "days_in_month",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "hour",
        "minute",
        "month",
        "year",
        "predict_linear",
        "time",
        "timestamp",
    ]
)

Labels = tuple[tuple[str, str], ...]
_EVAL_RE = re.compile(r"^eval(?:_(fail|ordered))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_LOAD_RE = re.compile(r"^load\s+(.+?)$")
_NUM = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF]|[nN][aA][nN]"
_ITEM_RE = re.compile(rf"_(?:x([0-9]+))?|(stale)|([+-]?(?:{_NUM}))(?:([+-](?:{_NUM}))?x([0-9]+))?")
_LABEL_RE = re.compile(
    r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')\s*(,|(?=}))"
)


class FormatError(ValueError):
    """A line of a .test file that the format does not allow."""


@dataclass
class Load:
    gap_ms: int
    series: dict[Labels, list[tuple[int, float]]] = field(default_factory=dict)


@dataclass
class Clear:
    pass


@dataclass
class Eval:
    """One ``eval`` command; ``expected`` maps label sets to (1-based position, value)."""

    file: str
    line: int
    expr: str
    time_ms: int
    fail: bool = False
    ordered: bool = False
    scalar: float | None = None
    expected: dict[Labels, tuple[int, float]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


Command = Load | Clear | Eval


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body)


def parse_series_desc(line: str) -> tuple[Labels, list[float | None]]:
    """``metric{labels} values``: the label set and one value per step (None: omitted)."""
    m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
    name = m.group(0) if m else None
    i = m.end() if m else 0
    labels: dict[str, str] = {"__name__": name} if name else {}
    if line[i : i + 1] == "{":
        i += 1
        while True:
            if line[i:].lstrip().startswith("}"):
                i = len(line) - len(line[i:].lstrip()) + 1
                break
            lm = _LABEL_RE.match(line, i)
            if lm is None:
                raise FormatError(f"bad label set in series description {line!r}")
            labels[lm.group(1)] = _unquote(lm.group(2))
            i = lm.end()
    elif name is None:
        raise FormatError(f"series description without metric: {line!r}")
    values: list[float | None] = []
    for item in line[i:].split():
        im = _ITEM_RE.fullmatch(item)
        if im is None:
            raise FormatError(f"bad series value {item!r} in {line!r}")
        blank_times, stale, start, step, times = im.groups()
        if item.startswith("_"):
            values += [None] * (int(blank_times) if blank_times else 1)
        elif stale:
            values.append(STALE_NAN)
        else:
            v = _float(start)
            inc = _float(step) if step else 0.0
            for _ in range(int(times) + 1 if times else 1):
                values.append(v)
                v += inc
    return canonical_labels(labels), values


def _float(text: str) -> float:
    v = go_parse_float(text)
    if v is None:
        raise FormatError(f"bad number {text!r}")
    return v


def parse_number(text: str) -> float | None:
    """test.go's parseNumber: strconv.ParseInt(s, 0, 64), else ParseFloat; None if neither."""
    try:
        if re.fullmatch(r"[+-]?0[0-7]+", text):
            return float(int(text, 8))
        return float(int(text, 0))
    except ValueError:
        return go_parse_float(text)


def parse_file(path: Path) -> list[Command]:
    """The commands of one .test file (comments and blank lines dropped)."""
    lines = ["" if ln.strip().startswith("#") else ln.strip() for ln in path.read_text().split("\n")]
    cmds: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        word = line.split(None, 1)[0].lower() if line else ""
        if not line:
            i += 1
            continue
        if word == "clear":
            cmds.append(Clear())
            i += 1
        elif word == "load":
            lm = _LOAD_RE.match(line)
            if lm is None:
                raise FormatError(f"{path.name}:{i + 1}: invalid load command")
            load = Load(parse_duration_ms(lm.group(1)))
            i += 1
            while i < len(lines) and lines[i]:
                labels, values = parse_series_desc(lines[i])
                load.series[labels] = [(k * load.gap_ms, v) for k, v in enumerate(values) if v is not None]
                i += 1
            cmds.append(load)
        elif word.startswith("eval"):
            em = _EVAL_RE.match(line)
            if em is None:
                raise FormatError(f"{path.name}:{i + 1}: invalid evaluation command")
            mod, at, expr = em.groups()
            cmd = Eval(
                path.name, i + 1, expr, parse_duration_ms(at), fail=mod == "fail", ordered=mod == "ordered"
            )
            i += 1
            pos = 1
            while i < len(lines) and lines[i]:
                number = parse_number(lines[i])
                if number is not None:
                    cmd.scalar = number
                    i += 1
                    break
                labels, values = parse_series_desc(lines[i])
                if len(values) != 1:
                    raise FormatError(f"{path.name}:{i + 1}: expecting one value per sample")
                cmd.expected[labels] = (pos, float(values[0]))  # type: ignore[arg-type]
                pos += 1
                i += 1
            cmds.append(cmd)
        else:
            raise FormatError(f"{path.name}:{i + 1}: invalid command {line!r}")
    return cmds


def evals_with_data(cmds: list[Command]) -> Iterator[tuple[Eval, Callable[[], TSDB]]]:
    """Each eval command with a function giving the TSDB its file has loaded by then (built once)."""
    loads: list[Load] = []
    built: dict[int, TSDB] = {}
    for cmd in cmds:
        if isinstance(cmd, Clear):
            loads = []
        elif isinstance(cmd, Load):
            loads = [*loads, cmd]
        else:
            snapshot = loads

            def db(snapshot: list[Load] = snapshot) -> TSDB:
                key = id(snapshot)
                if key not in built:
                    built.clear()
                    built[key] = _load(snapshot)
                return built[key]

            yield cmd, db


def _load(loads: list[Load]) -> TSDB:
    db = TSDB()
    for load in loads:
        for labels, samples in load.series.items():
            series = db.get_or_create(labels)
            for t_ms, v in samples:
                series.append(t_ms / 1000, v)
                db.note_time(t_ms / 1000)
    return db


# -- the @-modifier variants of test.go's atModifierTestCases ----------------------------------------


def _children(node: Expr) -> list[tuple[str, Expr | tuple[Expr, ...]]]:
    out: list[tuple[str, Expr | tuple[Expr, ...]]] = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Expr) or (isinstance(value, tuple) and value and isinstance(value[0], Expr)):
            out.append((f.name, value))
    return out


def with_at(node: Expr, ts_ms: int) -> tuple[Expr, bool]:
    """(node with ``@ ts`` on every selector and subquery lacking one outside ``@`` subqueries,
    whether it calls a function from AT_MODIFIER_UNSAFE there)."""
    unsafe = False
    if isinstance(node, VectorSelector):
        if node.at_ms is None:
            node = dataclasses.replace(node, at_ms=ts_ms, at_edge=None)
        return node, False
    if isinstance(node, MatrixSelector):
        sel = node.selector
        if sel.at_ms is None:
            sel = dataclasses.replace(sel, at_ms=ts_ms, at_edge=None)
        return dataclasses.replace(node, selector=sel), False
    if isinstance(node, SubqueryExpr):
        if node.at_ms is None:
            return dataclasses.replace(node, at_ms=ts_ms, at_edge=None), False
        return node, False  # an @ subquery: nothing inside changes, nothing inside counts
    if isinstance(node, Call) and node.func in AT_MODIFIER_UNSAFE:
        unsafe = True
    changes: dict[str, Expr | tuple[Expr, ...]] = {}
    for name, value in _children(node):
        if isinstance(value, tuple):
            items = [with_at(v, ts_ms) for v in value]
            changes[name] = tuple(v for v, _ in items)
            unsafe = unsafe or any(u for _, u in items)
        else:
            new, u = with_at(value, ts_ms)
            changes[name] = new
            unsafe = unsafe or u
    return dataclasses.replace(node, **changes), unsafe  # type: ignore[arg-type]


def variants(cmd: Eval) -> list[tuple[Expr, int]]:
    """(expression, evaluation time ms) pairs test.go runs for one eval command."""
    expr = parse(cmd.expr)
    out = [(expr, cmd.time_ms)]
    at_expr, unsafe = with_at(expr, cmd.time_ms)
    if unsafe:
        return out
    ts = cmd.time_ms
    times = [-1000, 0, 1000] if ts == 0 else [-10 * ts, 0, ts // 5, ts, 10 * ts]
    return out + [(at_expr, t) for t in times]


# -- running and comparing ----------------------------------------------------------------------------


def almost_equal(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or diff < MIN_NORMAL:
        return diff < EPSILON * MIN_NORMAL
    return diff / (abs(a) + abs(b)) < EPSILON


def _fmt(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def compare(
    cmd: Eval, result_type: str, samples: list[tuple[Labels, float]], scalar: float | None
) -> str | None:
    """test.go's compareResult: None if the result is what the file expects, else why not."""
    if result_type == "scalar":
        assert scalar is not None
        if cmd.scalar is None or not almost_equal(cmd.scalar, scalar):
            return f"expected scalar {cmd.scalar} but got {scalar}"
        return None
    if result_type != "vector":
        return f"received {result_type} result on instant evaluation"
    seen: set[Labels] = set()
    for pos, (labels, value) in enumerate(samples, start=1):
        exp = cmd.expected.get(labels)
        if exp is None:
            return f"unexpected metric {_fmt(labels)} in result"
        if cmd.ordered and exp[0] != pos:
            return f"expected metric {_fmt(labels)} with {exp[1]} at position {exp[0]} but was at {pos}"
        if not almost_equal(exp[1], value):
            return f"expected {exp[1]} for {_fmt(labels)} but got {value}"
        seen.add(labels)
    for labels, exp in cmd.expected.items():
        if labels not in seen:
            return f"expected metric {_fmt(labels)} with {exp[1]} not found"
    return None


def run_eval(cmd: Eval, db: TSDB) -> None:
    """Run one eval command as test.go does; raise AssertionError naming the failing variant."""
    try:
        queries = variants(cmd)
    except QueryError as err:
        raise AssertionError(f"{cmd.id}: {cmd.expr!r} does not parse: {err}") from None
    for expr, t_ms in queries:
        where = f"{cmd.id}: {cmd.expr!r} at {t_ms} ms{' (with @)' if expr is not queries[0][0] else ''}"
        try:
            res = instant_query(db, expr, t_ms / 1000)
        except QueryError as err:
            if cmd.fail:
                continue
            raise AssertionError(f"{where}: error {err}") from None
        if cmd.fail:
            raise AssertionError(f"{where}: expected an evaluation error, got none")
        samples = [(canonical_labels(s.metric), s.value) for s in res.vector]
        problem = compare(cmd, res.result_type, samples, res.scalar)
        if problem:
            raise AssertionError(f"{where}: {problem}")
        try:
            ranged = range_query(db, expr, (t_ms - 60_000) / 1000, (t_ms + 60_000) / 1000, 60.0)
        except QueryError as err:
            raise AssertionError(f"{where} in range mode: error {err}") from None
        if cmd.ordered:
            continue
        mid = [
            (canonical_labels(s.metric), float(s.values[j]))
            for s in ranged.matrix
            for j in np.flatnonzero(np.rint(s.timestamps * 1000).astype(np.int64) == t_ms)[:1]
        ]
        if res.result_type == "scalar":
            problem = compare(cmd, "scalar", [], mid[0][1] if mid else math.nan)
        else:
            problem = compare(cmd, "vector", mid, None)
        if problem:
            raise AssertionError(f"{where} in range mode: {problem}")
