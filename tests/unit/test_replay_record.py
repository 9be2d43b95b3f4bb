"""simkit record against the in-process Prometheus API: selectors, chunks, resume, bad input."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from simkit.cli import main
from simkit.errors import DataError
from simkit.prepare import prepare
from simkit.promql.api import PrometheusAPITransport
from simkit.replay.commands import load_manifests
from simkit.replay.record import RecordRequest, chunk_edges, record
from simkit.replay.recording import read_recording
from simkit.replay.selectors import format_selector, metric_selectors, query_selectors
from simkit.sim.experiment import simulate_experiment
from simkit.spec.bundle import load_scenario
from simkit.tsdb import TSDB

SEED = Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest"


@pytest.fixture(scope="module")
def seed_db() -> TSDB:
    return simulate_experiment(load_scenario(SEED), 1).world.tsdb


def _prepared():  # type: ignore[no-untyped-def]
    files, docs, exp = load_manifests(
        str(SEED / "experiment.yaml"), [str(SEED / "metrics.yaml"), str(SEED / "abtest.yaml")]
    )
    return files, prepare(exp, docs)


class FailingTransport(httpx.BaseTransport):
    """Answers like Prometheus, then breaks after ``limit`` requests (an interrupted recording)."""

    def __init__(self, db: TSDB, limit: int | None = None) -> None:
        self.inner = PrometheusAPITransport(db, lambda: db.max_time or 0.0)
        self.limit = limit
        self.calls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.limit is not None and len(self.calls) >= self.limit:
            raise httpx.ConnectError("connection refused")
        self.calls.append(request.url.path)
        return self.inner.handle_request(request)


def test_selectors_keep_version_matchers() -> None:
    _, prepared = _prepared()
    found = metric_selectors(prepared)
    baseline = [f for f in found if f.version == "iris-v1" and f.metric.endswith("error-rate")][0]
    texts = [format_selector(s) for s in baseline.selectors]
    assert len(texts) == 2
    assert 'code!="200"' in texts[0] and 'predictor_name="baseline"' in texts[0]
    assert texts[0].startswith('{__name__="seldon_api_executor_server_requests_seconds_count"')
    # the rendered selector parses back to the same matchers
    assert query_selectors(texts[0]) == [baseline.selectors[0]]


def test_record_is_exact_and_resumes_after_interruption(seed_db: TSDB, tmp_path: Path) -> None:
    files, prepared = _prepared()
    out = tmp_path / "r.rec"
    req = RecordRequest("http://prom.example", seed_db.min_time or 0, seed_db.max_time or 0, out, chunk=30.0)
    broken = FailingTransport(seed_db, limit=40)
    with pytest.raises(Exception, match="connection refused"):
        record(httpx.Client(transport=broken), prepared, files, req)
    parts = sorted((tmp_path / "r.rec.parts").glob("chunk-*.om"))
    assert parts and not out.exists()
    again = FailingTransport(seed_db)
    header, db = record(httpx.Client(transport=again), prepared, files, req)
    n_sel = len(header.selectors)
    # the resumed run re-enumerates series, then pulls only the chunks that were missing
    chunks = len(chunk_edges(req.start, req.end, req.chunk)) - 1
    assert chunks == 8  # -15 s to 210 s: the seed's 15 iterations at its recorded 13.08 s cadence
    assert again.calls.count("/api/v1/query") == n_sel * (chunks - len(parts))
    assert not (tmp_path / "r.rec.parts").exists()
    rec = read_recording(out)
    for s in rec.db:
        original = next(x for x in seed_db if x.labels == s.labels)
        assert original.arrays()[0].tolist() == s.arrays()[0].tolist()
        assert original.arrays()[1].tolist() == s.arrays()[1].tolist()
    # feedback-reward counters are not read by any Metric, so they are not recorded
    assert "seldon_api_model_feedback_total" not in rec.db.names()
    assert rec.header.experiment == "quickstart-exp" and rec.header.mode == "raw"


def test_same_inputs_give_byte_identical_recordings(seed_db: TSDB, tmp_path: Path) -> None:
    files, prepared = _prepared()
    texts = []
    for name in ("a.rec", "b.rec"):
        req = RecordRequest(
            "http://p", seed_db.min_time or 0, seed_db.max_time or 0, tmp_path / name, chunk=45.0
        )
        record(httpx.Client(transport=FailingTransport(seed_db)), prepared, files, req)
        texts.append((tmp_path / name).read_bytes())
    assert texts[0] == texts[1]


def test_step_mode_resamples(seed_db: TSDB, tmp_path: Path) -> None:
    files, prepared = _prepared()
    req = RecordRequest(
        "http://p", seed_db.min_time or 0, seed_db.max_time or 0, tmp_path / "s.rec", step=5.0
    )
    header, db = record(httpx.Client(transport=FailingTransport(seed_db)), prepared, files, req)
    assert header.mode == "step" and header.step == 5.0
    s = next(iter(db))
    t, _ = s.arrays()
    assert set((t[1:] - t[:-1]).tolist()) == {5.0}


def test_other_arguments_refuse_a_stale_sidecar(seed_db: TSDB, tmp_path: Path) -> None:
    files, prepared = _prepared()
    out = tmp_path / "r.rec"
    (tmp_path / "r.rec.parts").mkdir()
    (tmp_path / "r.rec.parts" / "meta.json").write_text('{"url": "elsewhere"}')
    req = RecordRequest("http://p", seed_db.min_time or 0, seed_db.max_time or 0, out)
    with pytest.raises(DataError, match="other arguments"):
        record(httpx.Client(transport=FailingTransport(seed_db)), prepared, files, req)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--start", "yesterday", "--end", "1"], "--start"),
        (["--start", "10", "--end", "5"], "--end"),
    ],
)
def test_bad_times_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(
        [
            "record",
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--experiment",
            str(SEED / "experiment.yaml"),
            str(SEED / "metrics.yaml"),
            *argv,
            "--out",
            str(tmp_path / "x.rec"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0]
