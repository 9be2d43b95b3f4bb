"""``simkit serve`` as a process: metrics, data plane, weights from a Kubernetes API, real Prometheus.

Each test starts ``simkit serve scenarios/iris-abtest --port 0`` as a subprocess, reads the port from
its ``listening on http://127.0.0.1:PORT`` line and stops it by PID at the end (SIGTERM, then
SIGKILL). The Kubernetes API is :class:`simkit.live.kubefake.KubeFake` in this process; the
Prometheus is Debian's 2.42 (``tests/support/prometheus.py``), scraping serve every second.
"""

from __future__ import annotations

import math
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from simkit.live.kubefake import KubeFake
from simkit.metrics.template import render_params, version_arguments
from simkit.spec.documents import load_yaml_documents
from simkit.spec.metric import load_metric
from simkit.tsdb.openmetrics import read_openmetrics
from tests.support.prometheus import PrometheusServer, ScrapeJob

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "iris-abtest"
SERVE = [sys.executable, "-m", "simkit.cli", "serve"]
SERVER = "seldon_api_executor_server_requests_seconds"
CLIENT = "seldon_api_executor_client_requests_seconds"
ROW = {"data": {"ndarray": [[6.8, 2.8, 4.8, 1.4]]}}
SKLEARN_SEED = {
    "data": {
        "names": ["t:0", "t:1", "t:2"],
        "ndarray": [[0.008074020139121783, 0.7781601484222704, 0.21376583143860778]],
    },
    "meta": {"requestPath": {"classifier": "seldonio/sklearnserver:1.18.2"}},
}
XGBOOST_SEED = {
    "data": {"names": [], "ndarray": [1.0]},
    "meta": {"requestPath": {"classifier": "seldonio/xgboostserver:1.18.2"}},
}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
INGRESS = "/seldon/ns-production/iris/api/v1.0"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    stderr: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> int:
        """SIGTERM by PID and wait; SIGKILL if it does not exit. Returns the exit code."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                return self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        return int(self.process.returncode)


@contextmanager
def serve(tmp_path: Path, *args: str) -> Iterator[Served]:
    err = tmp_path / f"serve-{time.monotonic_ns()}.err"
    with err.open("wb") as err_fh:
        proc = subprocess.Popen(
            [*SERVE, str(SEED), "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err_fh,
            stdin=subprocess.DEVNULL,
        )
    lines: queue.Queue[bytes] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    served = Served(proc, "", err)
    try:
        try:
            first = lines.get(timeout=60).decode()
        except queue.Empty:
            first = ""
        m = re.match(r"listening on (http://127\.0\.0\.1:\d+)$", first.strip())
        assert m, f"no 'listening on' line (got {first!r}); stderr:\n{err.read_text()}"
        served.url = m[1]
        yield served
    finally:
        served.stop()
        stdout.close()


def scrape(
    client: httpx.Client, path: str = "/prometheus"
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """name + labels -> value of one scrape, parsed by simkit's OpenMetrics reader."""
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    db = read_openmetrics(r.text.splitlines(), default_time=time.time())
    out = {}
    for s in db:
        labels = s.label_dict()
        name = labels.pop("__name__")
        out[(name, tuple(sorted(labels.items())))] = float(s.arrays()[1][-1])
    return out


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **match: str) -> float:
    return sum(v for (n, labels), v in samples.items() if n == name and match.items() <= dict(labels).items())


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_metrics_grow_and_are_complete_histograms(tmp_path: Path) -> None:
    with serve(tmp_path, "--speed", "5") as s, s.client() as c:
        first = scrape(c)
        assert (
            total(first, f"{SERVER}_count", service="predictions", predictor_name="baseline") > 0
        )  # warm-up ran
        wait_for(
            lambda: (
                total(scrape(c), f"{SERVER}_count", service="predictions")
                > total(first, f"{SERVER}_count", service="predictions")
            ),
            "the scenario's load to add requests",
        )
        samples = scrape(c)
        for (name, labels), value in samples.items():
            d = dict(labels)
            assert "job" not in d and "instance" not in d
            if name.endswith("_count") and name.startswith("seldon_api_executor"):
                family = name[: -len("_count")]
                inf = samples[(f"{family}_bucket", tuple(sorted({**d, "le": "+Inf"}.items())))]
                assert value == inf
                assert d["seldon_deployment_id"] == "iris" and d["kubernetes_namespace"] == "ns-production"
                les = sorted(
                    (float(dict(lb)["le"]), v)
                    for (n, lb), v in samples.items()
                    if n == f"{family}_bucket" and {k: x for k, x in lb if k != "le"} == d
                )
                assert len(les) == 15 and les[-1][0] == math.inf
                assert [v for _, v in les] == sorted(v for _, v in les)
        assert total(samples, f"{CLIENT}_count", service="/send-feedback", predictor_name="candidate") > 0
        assert c.get("/prometheus/ns-production/no-such-pod").status_code == 404
        assert s.stop() == 0  # SIGTERM: clean shutdown


def test_dataplane_and_weights_follow_the_kube_api(tmp_path: Path) -> None:
    docs = [d.raw for d in load_yaml_documents(SEED / "abtest.yaml")]
    with KubeFake() as fake:
        fake.cluster.load(docs)
        with serve(tmp_path, "--speed", "5", "--kube-url", fake.url, "--no-load") as s, s.client() as c:
            assert not scrape(c)  # no load and no request yet: no child series at all
            puids = set()
            for _ in range(8):
                r = c.post(f"{INGRESS}/predictions", json=ROW)
                assert r.status_code == 200 and r.json() == SKLEARN_SEED  # traffic 100/0: all on the baseline
                assert UUID.match(r.headers["seldon-puid"])
                puids.add(r.headers["seldon-puid"])
            assert len(puids) == 8
            r = c.post(
                "/direct/ns-production/iris/candidate/api/v1.0/feedback",
                json={"reward": 1},
                headers={"Seldon-Puid": "given-puid"},
            )
            assert r.status_code == 200 and r.headers["seldon-puid"] == "given-puid"
            assert r.json() == {
                "data": {"tensor": {"shape": [0]}},
                "meta": {"requestPath": {"classifier": "seldonio/xgboostserver:1.18.2"}},
            }
            assert (
                c.post(
                    "/service/ns-production/iris-candidate/api/v0.1/feedback", json={"reward": 0}
                ).status_code
                == 200
            )
            samples = scrape(c)
            assert total(samples, f"{SERVER}_count", service="predictions", predictor_name="baseline") == 8
            assert total(samples, f"{CLIENT}_count", service="/predict", predictor_name="baseline") == 8
            assert total(samples, f"{SERVER}_count", service="feedback", predictor_name="candidate") == 2
            assert total(samples, "seldon_api_model_feedback_reward_total", predictor_name="candidate") == 1
            assert total(samples, f"{SERVER}_count", predictor_name="candidate", service="predictions") == 0

            # unknown paths and deployments: 404 and not counted
            assert c.get("/nothing/here").status_code == 404
            assert c.post("/seldon/ns-production/nope/api/v1.0/predictions", json=ROW).status_code == 404
            assert c.get(f"{INGRESS}/health/status").status_code == 200
            bad = c.post(f"{INGRESS}/predictions", content=b"{not json")
            assert bad.status_code == 400 and bad.json()["status"]["reason"] == "MICROSERVICE_BAD_DATA"
            assert scrape(c) == samples

            # simkit live's patch, as the fake receives it: the split moves to the candidate
            fake.cluster.mutate(
                "SeldonDeployment",
                "ns-production",
                "iris",
                json_patch=[
                    {"op": "replace", "path": "/spec/predictors/0/traffic", "value": 0},
                    {"op": "replace", "path": "/spec/predictors/1/traffic", "value": 100},
                ],
            )
            wait_for(
                lambda: (
                    c.get("/_serve/state").json()["objects"][0]["weights"]
                    == {"baseline": 0, "candidate": 100}
                ),
                "the new weights to reach serve",
            )
            for _ in range(5):
                r = c.post(f"{INGRESS}/predictions", json=ROW)
                assert r.status_code == 200 and r.json() == XGBOOST_SEED
            after = scrape(c)
            assert total(after, f"{SERVER}_count", service="predictions", predictor_name="candidate") == 5
            assert total(after, f"{SERVER}_count", service="predictions", predictor_name="baseline") == 8
            assert s.stop() == 0


def test_bad_scenario_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*SERVE, str(tmp_path / "missing"), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "scenario not found" in proc.stderr


# the queries' window (elapsedTime, wall seconds); the test waits until Prometheus holds a whole
# window of 1-s scrapes: with fewer, each bucket series is extrapolated toward zero from its own
# first value, the bucket rates disagree, and a p95 of 12-ms calls came out 0.39 s once
WINDOW = 6.0


def _queries() -> dict[str, str]:
    """The seed's p95 and user-engagement queries, templated for the baseline and candidate."""
    metrics = {
        d.raw["metadata"]["name"]: load_metric(d)
        for d in load_yaml_documents(SEED / "metrics.yaml")
        if d.kind == "Metric"
    }
    experiment = yaml.safe_load((SEED / "experiment.yaml").read_text())
    versions = [
        experiment["spec"]["versionInfo"]["baseline"],
        *experiment["spec"]["versionInfo"]["candidates"],
    ]
    out = {}
    for v in versions:
        variables = {x["name"]: x["value"] for x in v["variables"]}
        for metric in ("95th-percentile-tail-latency", "user-engagement"):
            params = render_params(metrics[metric].spec, version_arguments(v["name"], variables, WINDOW))
            out[f"{metric}/{v['name']}"] = params["query"]
    return out


def test_real_prometheus_scrapes_serve_and_the_seed_queries_answer(
    tmp_path: Path, start_prometheus: Callable[[Sequence[ScrapeJob]], PrometheusServer]
) -> None:
    queries = _queries()
    assert "kubernetes_namespace='ns-production'" in queries["95th-percentile-tail-latency/iris-v1"]
    with serve(tmp_path, "--speed", "5") as s:
        prom = start_prometheus(
            [ScrapeJob([s.url.removeprefix("http://")], interval="1s", metrics_path="/prometheus")]
        )
        results: dict[str, float] = {}
        with prom.client() as c:

            def answered() -> bool:
                # scrapes spanning more than the window: the series are older than its start
                span = {"query": f"count_over_time(up[{WINDOW + 2:g}s])"}
                up = c.get("/api/v1/query", params=span).json()["data"]["result"]
                if not up or float(up[0]["value"][1]) < WINDOW + 1:
                    return False
                for key, q in queries.items():
                    body = c.get("/api/v1/query", params={"query": q}).json()
                    assert body["status"] == "success", body
                    result = body["data"]["result"]
                    if not result or result[0]["value"][1] == "NaN":
                        return False
                    results[key] = float(result[0]["value"][1])
                return True

            wait_for(answered, "the seed queries to return numbers", timeout=60)
            target = c.get("/api/v1/targets").json()["data"]["activeTargets"][0]
        assert target["health"] == "up" and target["labels"]["job"] == "simkit"
        # the baseline takes all predictions (traffic 100/0); p95 of a 12 ms-median lognormal
        assert 0.005 < results["95th-percentile-tail-latency/iris-v1"] < 0.25
        assert results["user-engagement/iris-v1"] > 0 and results["user-engagement/iris-v2"] > 0
