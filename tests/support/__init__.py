"""Test support shared by the unit, integration and live suites and by ``benchmarks/``.

- :mod:`tests.support.prometheus`: start and stop a real Prometheus 2.42 on 127.0.0.1
  (backfilled from a TSDB, or scraping targets), skipping outside CI only when it is missing.
- :mod:`tests.support.datasets`: deterministic synthetic Seldon-executor series as TSDBs.
"""
