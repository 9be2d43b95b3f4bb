"""The same Experiment in simulation and live gives the same decision sequence.

Live is the whole live path: `simkit serve` of the scenario (the simulated Seldon deployment in
real time, taking its routing weights from the Kubernetes API fake), a real Prometheus 2.42
scraping it, and `simkit live` patching the fake through the official client. Sim is `simkit
run`. Per iteration and version, the winner, the verdict and the weights applied must be the same.

Each case starts its own fake, `simkit serve` and Prometheus, so no case depends on what another
test did to shared state (the weights in the fake, the counters in a long-running serve) or on the
order the tests run in. Both sides seed the strategy the same way (`--seed`, so Iter8's randomised
rounding draws the same numbers); the worlds' own noise differs, so every case is one where the
decisions do not hinge on it (checked in sim over 16 seeds when the cases were chosen):

- the seed (`scenarios/iris-abtest`): 15 iterations, iris-v2 ramps to 95 (the seed's controller
  timing model is dropped: live iterations are `--interval-override` apart);
- a rollback (`scenarios/iris-rollback` with the candidate's error rate raised from 20% to 60%:
  at 20% the rollback iteration itself is a matter of chance, 2 or 4 across seeds);
- three versions (`scenarios/suite/three-versions` made decisive: engagement 5%/5%/90%, 40 qps,
  no errors, 8 iterations; as shipped its winner changes with the seed).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from simkit.cli import main
from simkit.live.kubefake import KubeFake, kubeconfig_text
from tests.support.prometheus import PrometheusServer, ScrapeJob, require_prometheus, run_prometheus

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
SPEED = 2.5  # sim seconds per wall second in simkit serve; intervals and scrapes are divided by it


def _drop_controller(folder: Path) -> None:
    text = (folder / "scenario.yaml").read_text()
    (folder / "scenario.yaml").write_text(
        text[: text.index("  controller:")] + text[text.index("  predictors:") :]
    )


def _decisive_rollback(folder: Path) -> None:
    text = (folder / "scenario.yaml").read_text()
    (folder / "scenario.yaml").write_text(
        text.replace('errors: {rate: 0.2, code: "500"}', 'errors: {rate: 0.6, code: "500"}')
    )


def _decisive_three_versions(folder: Path) -> None:
    text = (folder / "scenario.yaml").read_text()
    text = text.replace("errors: {rate: 0.002}", "errors: {rate: 0.0}").replace("mean: 2s", "mean: 0.5s")
    probabilities = iter(["0.05", "0.05", "0.9"])
    text = re.sub(r"probability: [0-9.]+", lambda m: f"probability: {next(probabilities)}", text)
    (folder / "scenario.yaml").write_text(text.replace("qps: 5, pattern", "qps: 40, pattern"))
    exp = (folder / "experiment.yaml").read_text()
    (folder / "experiment.yaml").write_text(exp.replace("iterationsPerLoop: 15", "iterationsPerLoop: 8"))


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # under scenarios/
    edit: Callable[[Path], None]
    deployment: str  # the manifest file holding the SeldonDeployment the Experiment patches
    seed: int
    scrape: float  # the scenario's scrape interval, sim seconds
    iterations: int  # completedIterations (a rollback iteration is traced but not completed)
    final: dict[str, int]  # the weights at the end, on both sides


CASES = [
    Case("seed", "iris-abtest", _drop_controller, "abtest.yaml", 1, 15, 15, {"iris-v1": 5, "iris-v2": 95}),
    Case(
        "rollback",
        "iris-rollback",
        _decisive_rollback,
        "abtest.yaml",
        1,
        15,
        2,
        {"iris-v1": 95, "iris-v2": 5},
    ),
    Case(
        "three-versions", "suite/three-versions", _decisive_three_versions, "deployment.yaml", 110, 5, 8, {}
    ),
]


def trace(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "trace.csv").read_text())))


def decisions(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [(r["iteration"], r["version"], r["winner"], r["verdict"], r["weight_after"]) for r in rows]


@contextmanager
def serve(scenario: Path, kube_url: str, seed: int, port_file: Path) -> Iterator[str]:
    """`simkit serve` of ``scenario`` in its own process, taking its routing weights from the fake."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simkit.cli", "serve", str(scenario), "--port", "0"]
        + ["--port-file", str(port_file), "--kube-url", kube_url, "--speed", str(SPEED)]
        + ["--kube-interval", "0.1", "--seed", str(seed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.05)
        yield f"127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def last_scrape(prom: PrometheusServer, timeout: float = 60) -> float:
    """The time of the latest scrape, once the target has been scraped twice (rates need two)."""
    deadline = time.monotonic() + timeout
    with prom.client() as c:
        while time.monotonic() < deadline:
            r = c.get("/api/v1/query", params={"query": "count_over_time(up[1m])"}).json()
            if r["data"]["result"] and float(r["data"]["result"][0]["value"][1]) >= 2:
                up = c.get("/api/v1/query", params={"query": "timestamp(up)"}).json()
                return float(up["data"]["result"][0]["value"][1])
            time.sleep(0.2)
    raise AssertionError(f"no scrapes of simkit serve:\n{prom.log_tail()}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sim_and_serve_take_the_same_decisions(case: Case, tmp_path: Path) -> None:
    require_prometheus()
    scenario = tmp_path / "scenario"
    shutil.copytree(SCENARIOS / case.source, scenario)
    case.edit(scenario)
    sim_out = tmp_path / "sim"
    assert main(["run", str(scenario), "--quiet", "--seed", str(case.seed), "--out", str(sim_out)]) == 0
    sim_rows = trace(sim_out)
    sim_status = yaml.safe_load((sim_out / "status.yaml").read_text())["status"]
    assert sim_status["completedIterations"] == case.iterations  # the case is what it says

    manifests = [d for d in yaml.safe_load_all((scenario / case.deployment).read_text()) if d]
    sdep = next(d for d in manifests if d.get("kind") == "SeldonDeployment")
    scrape = case.scrape / SPEED
    with KubeFake() as fake:
        fake.cluster.load(manifests)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_text(fake.url))
        with (
            serve(scenario, fake.url, case.seed, tmp_path / "port") as target,
            run_prometheus(
                scrape=[
                    ScrapeJob(
                        [target], interval=f"{scrape:g}s", job_name="seldon", metrics_path="/prometheus"
                    )
                ]
            ) as prom,
        ):
            # start the first iteration just before a scrape, as in the simulation where the
            # experiment starts on one, so each window holds as many scrapes as there
            next_scrape = last_scrape(prom) + scrape
            while next_scrape - time.time() < 1.3:
                next_scrape += scrape
            time.sleep(max(0.0, next_scrape - 1.2 - time.time()))
            live_out = tmp_path / "live"
            code = main(
                ["live", str(scenario / "experiment.yaml"), str(scenario / "metrics.yaml")]
                + ["--kubeconfig", str(kubeconfig), "--prometheus-url", prom.url, "--seed", str(case.seed)]
                + ["--interval-override", f"{10 / SPEED:g}s", "--out", str(live_out), "--quiet"]
            )
            assert code == 0
        obj = fake.cluster.object("SeldonDeployment", sdep["metadata"]["namespace"], sdep["metadata"]["name"])
    assert obj is not None
    live_rows = trace(live_out)
    assert decisions(live_rows) == decisions(sim_rows)
    status = yaml.safe_load((live_out / "status.yaml").read_text())["status"]
    weights = {w["name"]: w["value"] for w in status["currentWeightDistribution"]}
    assert weights == {w["name"]: w["value"] for w in sim_status["currentWeightDistribution"]}
    if case.final:
        assert weights == case.final
    assert status["completedIterations"] == case.iterations
    # the fake holds what the last applied decision set (a rollback iteration's weights are not applied)
    assert [int(p.get("traffic", 0)) for p in obj["spec"]["predictors"]] == list(weights.values())
