"""Fixtures for tests that need a real Prometheus 2.42 (see ``tests/support/prometheus.py``).

- ``prometheus_binaries``: the binaries, or a skip (outside CI) / failure (in CI) naming what is missing.
- ``datasets``: the synthetic Seldon data sets of ``tests/support/datasets.py``, built once.
- ``backfilled_prometheus``: ``name -> PrometheusServer``, one server per data set, started on first
  use (backfilled before start) and stopped by PID when the session ends.
- ``start_prometheus``: a factory for servers with scrape jobs (live tests); each is stopped at the
  end of the test that started it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `tests.support` must import however pytest was started
    sys.path.insert(0, str(_ROOT))

from tests.support.datasets import DATASETS, Dataset  # noqa: E402
from tests.support.prometheus import (  # noqa: E402
    Binaries,
    PrometheusServer,
    ScrapeJob,
    require_prometheus,
    run_prometheus,
)


@pytest.fixture(scope="session")
def prometheus_binaries() -> Binaries:
    return require_prometheus()


@pytest.fixture(scope="session")
def datasets() -> dict[str, Dataset]:
    return {name: build() for name, build in DATASETS.items()}


@pytest.fixture(scope="session")
def backfilled_prometheus(
    prometheus_binaries: Binaries, datasets: dict[str, Dataset], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], PrometheusServer]]:
    servers: dict[str, PrometheusServer] = {}
    with ExitStack() as stack:

        def get(name: str) -> PrometheusServer:
            if name not in servers:
                workdir = tmp_path_factory.mktemp(f"prom-{name}")
                servers[name] = stack.enter_context(
                    run_prometheus(datasets[name].db, workdir=workdir, binaries=prometheus_binaries)
                )
            return servers[name]

        yield get


@pytest.fixture
def start_prometheus(
    prometheus_binaries: Binaries, tmp_path: Path
) -> Iterator[Callable[[Sequence[ScrapeJob]], PrometheusServer]]:
    with ExitStack() as stack:
        count = 0

        def start(jobs: Sequence[ScrapeJob]) -> PrometheusServer:
            nonlocal count
            count += 1
            return stack.enter_context(
                run_prometheus(scrape=jobs, workdir=tmp_path / f"prom{count}", binaries=prometheus_binaries)
            )

        yield start
