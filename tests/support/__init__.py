"""Test support shared by the unit, integration and live suites and by ``benchmarks/``.

- :mod:`tests.support.prometheus`: start and stop a real Prometheus 2.42 on 127.0.0.1
  (backfilled from a TSDB, or scraping targets), skipping outside CI only when it is missing.
- :mod:`tests.support.datasets`: deterministic synthetic Seldon-executor series as TSDBs.
- :mod:`tests.support.prometheus_source`: Prometheus 2.42's own PromQL test files, fetched from
  Debian's source package and cached outside the repository.
- :mod:`tests.support.promqltest`: a runner for those files (the promqltest format, as 2.42's
  ``promql/test.go`` runs it).
"""
