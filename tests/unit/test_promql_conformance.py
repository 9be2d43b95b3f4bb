"""Prometheus 2.42's own PromQL test files, run against simkit's engine.

The 11 ``promql/testdata/*.test`` files of Debian's prometheus 2.42.0+ds source package (fetched
once and cached outside the repository, :mod:`tests.support.prometheus_source`) hold 566
``eval`` commands; each is one test here, run with every extra variant Prometheus' own harness
adds (``@`` modifier at five more times, range mode), :mod:`tests.support.promqltest`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simkit.tsdb import TSDB
from tests.support import prometheus_source
from tests.support.prometheus import in_ci
from tests.support.prometheus_source import FILES, SourceUnavailable
from tests.support.promqltest import Eval, evals_with_data, parse_file, run_eval

EXPECTED_EVALS = 566  # eval commands in the 11 files of 2.42.0


def _collect() -> tuple[list[tuple[Eval, Callable[[], TSDB]]], str | None]:
    try:
        folder = prometheus_source.testdata_dir()
    except SourceUnavailable as err:
        return [], str(err)
    cases: list[tuple[Eval, Callable[[], TSDB]]] = []
    for name in FILES:
        cases += evals_with_data(parse_file(folder / f"{name}.test"))
    return cases, None


CASES, UNAVAILABLE = _collect()


def test_all_files_and_evals_are_there() -> None:
    if UNAVAILABLE is not None:
        if in_ci():
            pytest.fail(f"Prometheus 2.42 test files required in CI: {UNAVAILABLE}", pytrace=False)
        pytest.skip(f"Prometheus 2.42 test files not available: {UNAVAILABLE}")
    assert len(CASES) == EXPECTED_EVALS
    assert {cmd.file for cmd, _ in CASES} == {f"{name}.test" for name in FILES}


@pytest.mark.parametrize(("cmd", "db"), CASES, ids=[cmd.id for cmd, _ in CASES])
def test_eval(cmd: Eval, db: Callable[[], TSDB]) -> None:
    run_eval(cmd, db())
