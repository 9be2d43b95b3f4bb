"""``simkit promql``: answer one PromQL query over an OpenMetrics file, as Prometheus' API would.

It goes through the same functions as the in-process HTTP API (:mod:`simkit.promql.api`):
parameter parsing, evaluation, and the byte-exact JSON rendering, so what it prints is what a
Metric's ``jqExpression`` would see. Errors are one line: a query that does not parse or is not
supported raises the engine's :class:`~simkit.errors.QueryError` (construct and position); a bad
``--time``/``--start``/``--end``/``--step`` raises :class:`~simkit.errors.SpecError`.
"""

from __future__ import annotations

import argparse
import sys

from simkit.errors import DataError, Location, QueryError, SpecError
from simkit.promql.api import (
    APIError,
    execute_instant,
    execute_range,
    parse_duration_param,
    parse_time_param,
    render_result,
)
from simkit.promql.values import QueryResult
from simkit.tsdb import TSDB, load_openmetrics

_WHERE = Location("command line")


def _arg_time(value: str, flag: str) -> float:
    try:
        return parse_time_param(value, flag.lstrip("-"))
    except APIError:
        raise SpecError(_WHERE, flag, f"cannot parse {value!r} as Unix seconds or RFC 3339 time") from None


def _arg_step(value: str) -> float:
    try:
        step = parse_duration_param(value, "step")
    except APIError:
        raise SpecError(
            _WHERE, "--step", f"cannot parse {value!r} as seconds or a duration like 15s"
        ) from None
    if step <= 0:
        raise SpecError(_WHERE, "--step", f"must be positive, got {value!r}")
    return step


def _unwrap(err: APIError) -> Exception:
    """The user-facing error behind an API error: the engine's QueryError, or a one-line SpecError."""
    if isinstance(err.cause, QueryError):
        return err.cause
    if err.error_type == "execution":
        return QueryError(err.message)
    return SpecError(_WHERE, None, err.message)


def evaluate(
    db: TSDB,
    query: str,
    time: str | None = None,
    start: str | None = None,
    end: str | None = None,
    step: str | None = None,
) -> QueryResult:
    """The query result for the CLI's arguments; instant at the newest sample if no time is given."""
    ranged = [x is not None for x in (start, end, step)]
    if any(ranged):
        if not all(ranged):
            missing = [
                f for f, given in zip(("--start", "--end", "--step"), ranged, strict=True) if not given
            ]
            raise SpecError(_WHERE, missing[0], "a range query needs --start, --end and --step")
        if time is not None:
            raise SpecError(_WHERE, "--time", "give either --time or --start/--end/--step, not both")
        assert start is not None and end is not None and step is not None
        s, e, d = _arg_time(start, "--start"), _arg_time(end, "--end"), _arg_step(step)
        if e < s:
            raise SpecError(_WHERE, "--end", f"end {end!r} is before start {start!r}")
        try:
            return execute_range(db, query, s, e, d)
        except APIError as err:
            raise _unwrap(err) from None
    if time is not None:
        t = _arg_time(time, "--time")
    elif db.max_time is not None:
        t = db.max_time
    else:
        raise DataError("the data file has no samples; give --time to query it anyway")
    try:
        return execute_instant(db, query, t)
    except APIError as err:
        raise _unwrap(err) from None


def cmd_promql(args: argparse.Namespace) -> int:
    """Print the Prometheus API JSON for ``args.query`` over ``args.data``."""
    db = load_openmetrics(args.data)
    result = evaluate(db, args.query, time=args.time, start=args.start, end=args.end, step=args.step)
    sys.stdout.write(render_result(result).decode() + "\n")
    return 0
