"""`simkit live` end to end: a real Prometheus 2.42 scraping `simkit serve`, the Kubernetes API fake
over real HTTP holding the seed's SeldonDeployment, and the seed's Experiment and Metrics unmodified.

Covers: the candidate wins and the weights reach 5/95 in the fake (the same decision sequence as
`simkit run` is tests/live/test_sim_serve_decisions.py, each case on its own servers); kill -9 and
resume from the journal with every iteration exactly once and no patch sent twice; Prometheus stopped mid-run (metrics unavailable, then recovery); an injected 409;
`--dry-run`; bad input that must exit 2 before any patch. Never skipped in CI.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

import simkit.live.commands  # noqa: F401  (imported up front: the timing test must not pay for imports)
from simkit.cli import main
from simkit.errors import SpecError
from simkit.live.kubefake import KubeFake, kubeconfig_text
from simkit.live.preflight import check_windows, scrape_intervals
from tests.support.prometheus import PrometheusServer, ScrapeJob, require_prometheus, run_prometheus

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "iris-abtest"
EXPERIMENT = SEED / "experiment.yaml"
METRICS = SEED / "metrics.yaml"
SPEED = 2.5  # sim seconds per wall second in simkit serve
SDEP = ("SeldonDeployment", "ns-production", "iris")


def traffic(fake: KubeFake) -> list[int]:
    obj = fake.cluster.object(*SDEP)
    assert obj is not None
    return [int(p.get("traffic", 0)) for p in obj["spec"]["predictors"]]


def reset(fake: KubeFake) -> None:
    fake.cluster.mutate(
        *SDEP,
        json_patch=[
            {"op": "add", "path": "/spec/predictors/0/traffic", "value": 100},
            {"op": "add", "path": "/spec/predictors/1/traffic", "value": 0},
        ],
    )
    fake.cluster.clear_requests()


def patches(fake: KubeFake) -> int:
    return sum(1 for r in fake.cluster.requests if r.method == "PATCH")


@pytest.fixture(scope="module")
def fake() -> Iterator[KubeFake]:
    with KubeFake() as kf:
        kf.cluster.load(list(yaml.safe_load_all((SEED / "abtest.yaml").read_text())))
        yield kf


@pytest.fixture(scope="module")
def kubeconfig(fake: KubeFake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(kubeconfig_text(fake.url))
    return path


@pytest.fixture(scope="module")
def serve(fake: KubeFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`simkit serve` of the seed scenario, taking its routing weights from the fake."""
    port_file = tmp_path_factory.mktemp("serve") / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simkit.cli",
            "serve",
            str(SEED),
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--kube-url",
            fake.url,
            "--speed",
            str(SPEED),
            "--kube-interval",
            "0.1",
        ],
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


def wait_for_data(prom: PrometheusServer, timeout: float = 30) -> None:
    """Until the serve target has been scraped at least twice (rates need two samples)."""
    deadline = time.monotonic() + timeout
    with prom.client() as c:
        while time.monotonic() < deadline:
            r = c.get("/api/v1/query", params={"query": "count_over_time(up[1m])"}).json()
            if r["data"]["result"] and float(r["data"]["result"][0]["value"][1]) >= 2:
                return
            time.sleep(0.2)
    raise AssertionError(f"no scrapes of simkit serve:\n{prom.log_tail()}")


@pytest.fixture(scope="module")
def prometheus(serve: str) -> Iterator[PrometheusServer]:
    require_prometheus()
    with run_prometheus(
        scrape=[ScrapeJob([serve], interval="1s", job_name="seldon", metrics_path="/prometheus")]
    ) as prom:
        wait_for_data(prom)
        yield prom


def live_args(kubeconfig: Path, prom_url: str, *extra: str) -> list[str]:
    return [
        "live",
        str(EXPERIMENT),
        str(METRICS),
        "--kubeconfig",
        str(kubeconfig),
        "--prometheus-url",
        prom_url,
        *extra,
    ]


def trace(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "trace.csv").read_text())))


def winners(rows: list[dict[str, str]]) -> list[str]:
    return [r["winner"] for r in rows if r["version"] == "iris-v1"]


def test_live_run_promotes_the_candidate_to_95(
    fake: KubeFake, kubeconfig: Path, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    reset(fake)
    out = tmp_path / "out"
    code = main(live_args(kubeconfig, prometheus.url, "--interval-override", "1s", "--out", str(out)))
    assert code == 0
    assert traffic(fake) == [5, 95]
    status = yaml.safe_load((out / "status.yaml").read_text())["status"]
    assert status["completedIterations"] == 15
    assert status["versionRecommendedForPromotion"] == "iris-v2"
    assert status["currentWeightDistribution"] == [
        {"name": "iris-v1", "value": 5},
        {"name": "iris-v2", "value": 95},
    ]
    # one JSON patch per iteration that changed the weights, both fields together
    assert patches(fake) == len({r["weight_after"] for r in trace(out) if r["version"] == "iris-v2"} - {"0"})


def _completed(journal: Path) -> list[int]:
    return [
        json.loads(line)["n"]
        for line in journal.read_text().splitlines()
        if line.strip() and json.loads(line).get("type") == "iteration_completed"
    ]


def test_kill_9_then_resume_runs_every_iteration_exactly_once(
    fake: KubeFake, kubeconfig: Path, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    reset(fake)
    journal = tmp_path / "live.journal"
    cmd = [
        sys.executable,
        "-m",
        "simkit.cli",
        *live_args(
            kubeconfig,
            prometheus.url,
            "--interval-override",
            "1s",
            "--journal",
            str(journal),
            "--out",
            str(tmp_path / "out"),
        ),
    ]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not journal.exists() or len(_completed(journal)) < 5):
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    done_before = _completed(journal)
    assert 5 <= len(done_before) < 15
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"resuming default/quickstart-exp after iteration {len(done_before)}" in second.stderr
    assert _completed(journal) == list(range(1, 16))
    records = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    applied = [r for r in records if r["type"] == "patch_applied"]
    assert patches(fake) == len(applied)  # no patch was sent twice
    assert traffic(fake) == [5, 95]
    assert records[-1]["type"] == "finished"


def _restart(prom: PrometheusServer) -> subprocess.Popen[bytes]:
    """Start Prometheus again on the same port and data dir (as after a crash or an upgrade)."""
    bins = require_prometheus()
    args = [
        bins.prometheus,
        f"--config.file={prom.workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={prom.data_dir}",
        f"--web.listen-address=127.0.0.1:{prom.port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{prom.url}/-/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("Prometheus did not come back")


def test_prometheus_down_mid_run_then_recovery(
    fake: KubeFake, kubeconfig: Path, serve: str, tmp_path: Path
) -> None:
    reset(fake)
    out = tmp_path / "out"
    with run_prometheus(
        scrape=[ScrapeJob([serve], interval="1s", job_name="seldon", metrics_path="/prometheus")]
    ) as prom:
        wait_for_data(prom)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simkit.cli",
                *live_args(
                    kubeconfig, prom.url, "--interval-override", "2s", "--timeout", "1s", "--out", str(out)
                ),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        restarted = None
        try:
            time.sleep(9)  # a few iterations with data
            prom.stop()
            time.sleep(7)  # iterations without Prometheus
            restarted = _restart(prom)
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
            if restarted is not None:
                restarted.send_signal(signal.SIGTERM)
                restarted.wait(timeout=10)
    seq = winners(trace(out))
    rows = trace(out)
    unavailable = [
        r["iteration"] for r in rows if r["version"] == "iris-v2" and r["iter8-seldon/user-engagement"] == ""
    ]
    assert unavailable, "some iterations ran while Prometheus was down"
    # Iter8 semantics: no values -> objectives fail -> no winner -> the baseline takes the weight back
    down = [r for r in rows if r["iteration"] in unavailable and r["version"] == "iris-v2"]
    assert all(r["winner"] == "" and r["weight_after"] == "5" for r in down[1:]) and down
    said = err.decode()
    for n in unavailable:  # loudly, in every iteration it happens
        assert f"iteration {n}: metric iter8-seldon/user-engagement unavailable" in said, said[-3000:]
    # recovery: the candidate wins again once Prometheus answers
    assert seq[-1] == "iris-v2" and seq.index("iris-v2") < int(unavailable[0])


def test_conflict_409_is_retried(
    fake: KubeFake, kubeconfig: Path, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    reset(fake)
    fake.cluster.fail_next(*SDEP, count=2, status=409)
    assert main(live_args(kubeconfig, prometheus.url, "--interval-override", "1s")) == 0
    assert traffic(fake) == [5, 95]


def test_dry_run_leaves_the_object_untouched(
    fake: KubeFake, kubeconfig: Path, prometheus: PrometheusServer, capsys: pytest.CaptureFixture[str]
) -> None:
    reset(fake)
    capsys.readouterr()
    assert (
        main(live_args(kubeconfig, prometheus.url, "--interval-override", "1s", "--dry-run", "-o", "json"))
        == 0
    )
    assert traffic(fake) == [100, 0] and patches(fake) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "dry run: would patch SeldonDeployment ns-production/iris" in err
    assert "finish action (not run" in err
    # -o json: stdout holds only the Experiment object with its final status, as `simkit run -o json`
    experiment = json.loads(captured.out)
    assert experiment["kind"] == "Experiment" and experiment["status"]["completedIterations"] == 15


@pytest.mark.parametrize("case", ["prometheus", "not-prometheus", "kubeconfig", "object", "jq"])
def test_bad_input_or_backend_fails_before_sending_a_patch(
    case: str, fake: KubeFake, kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad input (kubeconfig, a missing weightObjRef object, bad jq) exits 2; a Prometheus that is
    unreachable or is not a Prometheus (HTTP 404 on the query API) is a backend failure, exit 3,
    found by the preflight before anything is written."""
    reset(fake)
    exp, metrics = EXPERIMENT, METRICS
    prom, kcfg = "http://127.0.0.1:9", str(kubeconfig)  # port 9 (discard): nothing listens there
    expected = {
        "prometheus": "Prometheus at http://127.0.0.1:9 is unreachable",
        "not-prometheus": f"{fake.url} is not a Prometheus: the query vector(1)",
        "kubeconfig": "kubeconfig",
        "object": "SeldonDeployment ns-production/iris-missing",
        "jq": "spec.jqExpression",
    }[case]
    if case == "kubeconfig":
        kcfg = str(tmp_path / "no-such-kubeconfig")
    if case == "not-prometheus":
        prom = fake.url  # an HTTP server that answers /api/v1/query with 404: not a Prometheus
    if case == "object":
        exp = tmp_path / "experiment.yaml"
        exp.write_text(EXPERIMENT.read_text().replace("name: iris\n", "name: iris-missing\n"))
    if case == "jq":
        metrics = tmp_path / "metrics.yaml"
        metrics.write_text(
            METRICS.read_text().replace(".data.result[0].value[1] | tonumber", ".data.result[0 | tonumber", 1)
        )
    code = main(
        ["live", str(exp), str(metrics), "--kubeconfig", kcfg, "--prometheus-url", prom, "--timeout", "1s"]
    )
    err = capsys.readouterr().err.strip()
    assert code == (3 if case in ("prometheus", "not-prometheus") else 2), err
    assert len(err.splitlines()) == 1 and expected in err, err
    assert patches(fake) == 0 and traffic(fake) == [100, 0]
    assert not [r for r in fake.cluster.requests if r.method != "GET"]  # no write of any kind


def test_from_cluster_reads_experiment_metrics_and_secrets(
    fake: KubeFake, kubeconfig: Path, prometheus: PrometheusServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--from-cluster`: the Experiment and its Metrics come from the API; a Metric that names a
    Secret gets the Secret's data through the API too (here a bearer token header)."""
    reset(fake)
    metrics = list(yaml.safe_load_all(METRICS.read_text()))
    for m in metrics:
        if m.get("kind") == "Metric" and m["metadata"]["name"] == "user-engagement":
            m["spec"].update(
                authType="Bearer",
                secret="iter8-seldon/prom-auth",
                headerTemplates=[{"name": "Authorization", "value": "Bearer ${token}"}],
            )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "prom-auth", "namespace": "iter8-seldon"},
        "data": {"token": "c2VjcmV0"},
    }
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    experiment["metadata"]["namespace"] = "seldon"
    fake.cluster.load([*metrics, secret, experiment])
    fake.cluster.clear_requests()
    code = main(
        [
            "live",
            "--from-cluster",
            "quickstart-exp",
            "-n",
            "seldon",
            "--kubeconfig",
            str(kubeconfig),
            "--prometheus-url",
            prometheus.url,
            "--interval-override",
            "1s",
            "--dry-run",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "simkit live: seldon/quickstart-exp" in err
    assert (
        fake.cluster.count("GET", "/apis/iter8.tools/v2alpha2/namespaces/seldon/experiments/quickstart-exp")
        == 1
    )
    assert fake.cluster.count("GET", "/api/v1/namespaces/iter8-seldon/secrets/prom-auth") >= 1
    assert "recommended iris-v2" in err  # the authenticated reward metric was read
    assert patches(fake) == 0 and traffic(fake) == [100, 0]


def test_from_cluster_keeps_the_experiment_status_current(
    fake: KubeFake,
    kubeconfig: Path,
    prometheus: PrometheusServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Like etc3, a live run of a cluster Experiment writes its status (status subresource), so
    `kubectl get experiment -o yaml | simkit describe -` shows the run."""
    reset(fake)
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    experiment["metadata"].update(name="status-exp", namespace="seldon")
    fake.cluster.load([*yaml.safe_load_all(METRICS.read_text()), experiment])
    code = main(
        [
            "live",
            "--from-cluster",
            "status-exp",
            "-n",
            "seldon",
            "--kubeconfig",
            str(kubeconfig),
            "--prometheus-url",
            prometheus.url,
            "--interval-override",
            "1s",
        ]
    )
    assert code == 0, capsys.readouterr().err
    obj = fake.cluster.object("Experiment", "seldon", "status-exp")
    assert obj is not None
    status = obj["status"]
    assert status["completedIterations"] == 15 and status["stage"] == "Completed"
    assert status["versionRecommendedForPromotion"] == "iris-v2"
    assert obj["spec"] == experiment["spec"]  # only the status subresource was written
    dumped = tmp_path / "exp.yaml"
    dumped.write_text(yaml.safe_dump(obj))
    capsys.readouterr()
    assert main(["describe", str(dumped)]) == 0
    assert "Winning version: iris-v2" in capsys.readouterr().out
    assert traffic(fake) == [5, 95]


@pytest.mark.parametrize("option", ["--timeout", "--interval-override"])
def test_bad_duration_option_exits_2_before_contacting_anything(
    option: str, fake: KubeFake, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reset(fake)
    code = main(["live", str(EXPERIMENT), str(METRICS), "--kubeconfig", str(kubeconfig), option, "soon"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and option in err, err
    # the module's `simkit serve --kube-url` polls the SeldonDeployment all along; simkit live would
    # have to discover the API's resources first, so any other request means it contacted the cluster
    followed = "/apis/machinelearning.seldon.io/v1/namespaces/ns-production/seldondeployments/iris"
    assert [r for r in fake.cluster.requests if not (r.method == "GET" and r.path == followed)] == []


def _when_candidate_reaches(
    fake: KubeFake, weight: int, then: Callable[[], object], journal: Path | None = None
) -> threading.Thread:
    """In the background: as soon as the candidate has ``weight`` (with a journal: and its
    iteration is completed, so that nothing is being patched), do ``then`` (another writer)."""

    def ready() -> bool:
        if traffic(fake)[1] < weight:
            return False
        try:
            return journal is None or any(
                r["type"] == "iteration_completed" and r["weights"]["iris-v2"] >= weight  # type: ignore[index]
                for r in _journal(journal)
            )
        except (OSError, ValueError):  # not there yet, or a line being written
            return False

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ready():
            time.sleep(0.02)
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _journal(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_rollback_on_error_restores_the_baseline_after_a_rejected_patch(
    fake: KubeFake,
    kubeconfig: Path,
    prometheus: PrometheusServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reset(fake)
    journal = tmp_path / "j"
    thread = _when_candidate_reaches(fake, 20, lambda: fake.cluster.fail_next(*SDEP, count=1, status=422))
    code = main(
        live_args(
            kubeconfig,
            prometheus.url,
            "--interval-override",
            "1s",
            "--rollback-on-error",
            "--journal",
            str(journal),
        )
    )
    thread.join(timeout=5)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "experiment failed: WeightRedistributionFailed" in err
    assert traffic(fake) == [100, 0]  # every field written, so admission accepts the restore
    last = _journal(journal)[-1]
    assert last["type"] == "finished" and last["outcome"]["restored"] == {"iris-v1": 100, "iris-v2": 0}  # type: ignore[index]
    assert main(live_args(kubeconfig, prometheus.url, "--journal", str(journal))) == 0  # nothing to resume
    assert "this run already finished" in capsys.readouterr().err


def test_409_retries_exhausted_says_why(
    fake: KubeFake, kubeconfig: Path, prometheus: PrometheusServer, capsys: pytest.CaptureFixture[str]
) -> None:
    reset(fake)
    fake.cluster.fail_next(*SDEP, count=100, status=409)
    code = main(live_args(kubeconfig, prometheus.url, "--interval-override", "1s"))
    err = capsys.readouterr().err
    fake.cluster.fail_next(*SDEP, count=0)
    assert code == 1, err
    assert "experiment failed: WeightRedistributionFailed" in err and "kept conflicting (HTTP 409)" in err, (
        err
    )


@pytest.mark.parametrize("adopt", [False, True], ids=["stops", "adopts"])
def test_external_weight_drift_is_reported_and_stops_unless_adopted(
    adopt: bool,
    fake: KubeFake,
    kubeconfig: Path,
    prometheus: PrometheusServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reset(fake)
    journal = tmp_path / "j"
    drift = [
        {"op": "add", "path": "/spec/predictors/0/traffic", "value": 50},
        {"op": "add", "path": "/spec/predictors/1/traffic", "value": 50},
    ]
    thread = _when_candidate_reaches(fake, 20, lambda: fake.cluster.mutate(*SDEP, json_patch=drift), journal)
    extra = ["--adopt-drift"] if adopt else []
    code = main(
        live_args(kubeconfig, prometheus.url, "--interval-override", "1s", "--journal", str(journal), *extra)
    )
    thread.join(timeout=5)
    err = capsys.readouterr().err
    assert "weights drifted to {'iris-v1': 50, 'iris-v2': 50}" in err, err
    notes = [r for r in _journal(journal) if r["type"] == "drift"]
    assert len(notes) == 1 and notes[0]["adopted"] is adopt
    if adopt:
        assert code == 0 and traffic(fake) == [5, 95], err
    else:
        assert code == 1 and "WeightDrift" in err, err
        assert traffic(fake) == [50, 50]  # the other writer's weights, not overwritten


def test_metric_windows_shorter_than_the_scrape_interval_are_refused(
    fake: KubeFake, kubeconfig: Path, serve: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's --interval-override 1s under Prometheus' default 15-s scrape: every
    [${elapsedTime}s] window stays under 15 s, so every value would be unavailable."""
    reset(fake)
    with run_prometheus(
        scrape=[ScrapeJob([serve], interval="15s", job_name="seldon", metrics_path="/prometheus")]
    ) as prom:
        code = main(live_args(kubeconfig, prom.url, "--interval-override", "1s"))
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert "shorter than the Prometheus scrape interval (15s)" in err, err
        assert patches(fake) == 0
        assert scrape_intervals(httpx.Client(), prom.url) == [15.0]


def test_short_windows_in_early_iterations_are_warned_about() -> None:
    from simkit.prepare import prepare
    from simkit.spec.documents import load_yaml_documents

    exp = next(d for d in load_yaml_documents(EXPERIMENT) if d.kind == "Experiment")
    prepared = prepare(exp, load_yaml_documents(METRICS))
    prepared = dataclasses.replace(prepared, plan=dataclasses.replace(prepared.plan, interval_seconds=5.0))
    said: list[str] = []
    check_windows(prepared, 15.0, said.append)
    assert said == [
        "warning: in iterations 1-6 some metric windows are shorter than two scrape intervals (30s); "
        "rates there may be unavailable"
    ]
    said.clear()
    check_windows(prepared, 0.5, said.append)
    assert said == []  # 1-s windows hold two 0.5-s scrapes
    with pytest.raises(SpecError, match=r"at most 70s .* scrape interval \(80s\)"):
        check_windows(prepared, 80.0, said.append)
