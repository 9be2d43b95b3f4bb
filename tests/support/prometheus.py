"""Start a real Prometheus 2.42 (Debian's ``prometheus`` package) for tests and benchmarks.

Why a hand-rolled harness: there is no Docker on the development machines, and the packaged
defaults (``0.0.0.0:9090``, ``/var/lib/prometheus``) are unusable in tests. Every server here
listens on 127.0.0.1 on an ephemeral port, keeps its data in a temporary folder and is stopped by
its PID (SIGTERM, then SIGKILL) when the context manager exits.

Two ways to get data in (see ``/work/shared/docs/live-infra.md`` §1):

- **backfill**: the TSDB is written as OpenMetrics and turned into blocks with
  ``promtool tsdb create-blocks-from openmetrics`` *before* the server starts, so it can be
  queried at once. Retention stays at the default (15d): it counts from the newest block, so
  data at a 2021 epoch survives.
- **scrape**: a ``scrape_configs`` job over the given targets, for live tests.

If the binaries are missing, :func:`require_prometheus` skips the test outside CI with a message
naming what is missing, and fails it in CI (``CI`` set): the suite never skips there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from simkit.tsdb import TSDB, save_openmetrics

PROMETHEUS_BIN = "prometheus"
PROMTOOL_BIN = "promtool"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


class PrometheusUnavailable(RuntimeError):
    """The Prometheus or promtool binary is not installed (the message says which)."""


@dataclass(frozen=True)
class Binaries:
    prometheus: str
    promtool: str


def find_binaries() -> Binaries:
    """Locate ``prometheus`` and ``promtool`` on PATH (or /usr/bin), or raise PrometheusUnavailable."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in (PROMETHEUS_BIN, PROMTOOL_BIN):
        path = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        raise PrometheusUnavailable(
            f"{' and '.join(missing)} not found on PATH or in /usr/bin "
            "(install the Debian package: apt-get install -y --no-install-recommends prometheus)"
        )
    return Binaries(found[PROMETHEUS_BIN], found[PROMTOOL_BIN])


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_prometheus() -> Binaries:
    """The binaries for a pytest test: skip outside CI if missing, fail loudly in CI."""
    import pytest  # only tests need pytest; benchmarks call find_binaries() directly

    try:
        return find_binaries()
    except PrometheusUnavailable as err:
        if in_ci():
            pytest.fail(f"real Prometheus required in CI: {err}", pytrace=False)
        pytest.skip(f"real Prometheus not available: {err}")
    raise AssertionError("unreachable")


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backfill(db: TSDB, data_dir: Path, promtool: str | None = None) -> None:
    """Write ``db`` as TSDB blocks into ``data_dir`` (which the server must not be using yet)."""
    promtool = promtool or find_binaries().promtool
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="simkit-om-") as tmp:
        om = Path(tmp) / "data.om"
        save_openmetrics(db, om)
        proc = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(data_dir)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"promtool backfill failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


@dataclass(frozen=True)
class ScrapeJob:
    """One scrape job for live tests: static targets ("host:port"), interval and path."""

    targets: Sequence[str]
    interval: str = "1s"
    job_name: str = "simkit"
    metrics_path: str = "/metrics"
    labels: Mapping[str, str] = field(default_factory=dict)


def render_config(jobs: Sequence[ScrapeJob]) -> str:
    """prometheus.yml for the given jobs (JSON is valid YAML, so no YAML writer is needed)."""
    import json

    # evaluation_interval is also the default resolution of a subquery without a step (x[1h:]):
    # Prometheus' built-in 1m, the one simkit's engine assumes
    config: dict[str, Any] = {"global": {"scrape_interval": "15s", "evaluation_interval": "1m"}}
    if jobs:
        config["scrape_configs"] = [
            {
                "job_name": j.job_name,
                "scrape_interval": j.interval,
                "scrape_timeout": j.interval,
                "metrics_path": j.metrics_path,
                "static_configs": [{"targets": list(j.targets), "labels": dict(j.labels)}],
            }
            for j in jobs
        ]
    return json.dumps(config, indent=1) + "\n"


@dataclass
class PrometheusServer:
    """A running Prometheus: its base URL, PID and folders; ``client()`` gives an httpx.Client."""

    url: str
    port: int
    pid: int
    workdir: Path
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM by PID, wait; SIGKILL if it does not exit in time. Idempotent."""
        if self.process.poll() is not None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except ProcessLookupError:
            pass


def _start(
    bins: Binaries, workdir: Path, data_dir: Path, config: str, extra_args: Sequence[str]
) -> PrometheusServer:
    config_path = workdir / "prometheus.yml"
    config_path.write_text(config)
    log_path = workdir / "prometheus.log"
    port = free_port()
    args = [
        bins.prometheus,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--web.enable-admin-api",
        "--web.enable-remote-write-receiver",
        "--log.level=warn",
        *extra_args,
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return PrometheusServer(f"http://127.0.0.1:{port}", port, proc.pid, workdir, data_dir, log_path, proc)


def _wait_ready(server: PrometheusServer) -> bool:
    """True once /-/ready answers 200; False if the process died first (e.g. port taken)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=1.0) as c:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            try:
                if c.get(f"{server.url}/-/ready").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.03)
    server.stop()
    raise RuntimeError(f"Prometheus on {server.url} not ready after {READY_TIMEOUT_S}s:\n{server.log_tail()}")


@contextmanager
def run_prometheus(
    data: TSDB | None = None,
    scrape: Sequence[ScrapeJob] = (),
    workdir: Path | None = None,
    extra_args: Sequence[str] = (),
    binaries: Binaries | None = None,
) -> Iterator[PrometheusServer]:
    """Start Prometheus (backfilled with ``data`` if given, scraping ``scrape``), yield it, stop it.

    ``workdir`` defaults to a fresh temporary folder that is removed afterwards.
    """
    bins = binaries or find_binaries()
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="simkit-prom-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    server: PrometheusServer | None = None
    try:
        if data is not None:
            backfill(data, data_dir, bins.promtool)
        for _attempt in range(3):  # the ephemeral port can be taken between probe and bind
            server = _start(bins, work, data_dir, render_config(scrape), extra_args)
            if _wait_ready(server):
                break
            server.stop()
        else:
            raise RuntimeError(f"Prometheus did not start:\n{server.log_tail() if server else ''}")
        yield server
    finally:
        if server is not None:
            server.stop()
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
