"""`simkit run` end to end: the seed scenario as recorded, every scenario's expect block, bad input."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
import yaml

from simkit.cli import main
from simkit.report.run import run_scenario
from simkit.views.describe import describe

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SEED = SCENARIOS / "iris-abtest"
WITH_EXPECT = sorted(
    p.name
    for p in SCENARIOS.iterdir()
    if (p / "scenario.yaml").is_file() and "expect:" in (p / "scenario.yaml").read_text()
)
PROMOTE_V2 = (
    "https://gist.githubusercontent.com/cliveseldon/3766b9315a187aa2800422205832ad9b/raw/"
    "ba00718fcacb8014e826cc6410a8190aa19116d4/promote-v2.yaml"
)


@pytest.fixture(scope="module")
def seed_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed")
    assert main(["run", str(SEED), "--out", str(out), "--quiet"]) == 0
    return out


def test_seed_completes_like_the_recorded_run(seed_out: Path) -> None:
    exp = yaml.safe_load((seed_out / "status.yaml").read_text())
    status = exp["status"]
    assert status["completedIterations"] == 15
    assert status["versionRecommendedForPromotion"] == "iris-v2"
    assert status["analysis"]["winnerAssessment"]["data"] == {"winner": "iris-v2", "winnerFound": True}
    assert (
        status["analysis"]["winnerAssessment"]["message"] == "Error: ; Warning: ; Info: found unique winner"
    )
    assert status["currentWeightDistribution"] == [
        {"name": "iris-v1", "value": 5},
        {"name": "iris-v2", "value": 95},
    ]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (
        conditions["Completed"]["status"] == "True"
        and conditions["Completed"]["reason"] == "ExperimentCompleted"
    )
    assert conditions["Failed"]["status"] == "False"
    assert status["stage"] == "Completed" and status["message"] == "ExperimentCompleted: Experiment Completed"
    # the spec is the user's manifest, unmodified (etc3 never persists its defaults)
    assert exp["spec"] == yaml.safe_load((SEED / "experiment.yaml").read_text())["spec"]
    # simkit describe reads its own status.yaml
    assert "Winning version: iris-v2" in describe(exp)


def test_seed_metric_values_carry_the_seed_quirks(seed_out: Path) -> None:
    rows = list(csv.DictReader(io.StringIO((seed_out / "trace.csv").read_text())))
    last = [r for r in rows if r["iteration"] == "15"]
    assert [r["version"] for r in last] == ["iris-v1", "iris-v2"]
    for r in last:
        mean = float(r["iter8-seldon/mean-latency"])
        p95 = float(r["iter8-seldon/95th-percentile-tail-latency"])
        assert 0.002 < mean < 0.05, "'milliseconds' metrics are really seconds"
        assert mean < p95 < 0.1
        # request-count sums latency seconds: ~ mean latency x requests, far below the request count
        assert float(r["iter8-seldon/request-count"]) < 10
    v2_engagement = float(last[1]["iter8-seldon/user-engagement"])
    # 1 feedback/s over the 183 s window (the recorded cadence: spec.controller.iterationDelay)
    assert abs(v2_engagement - 183) < 3


def test_seed_finish_action_names_the_candidates_promote_url() -> None:
    run = run_scenario(SEED)
    (finish,) = run.result.actions
    assert finish.action == "finish"
    assert finish.tasks[0]["args"] == ["-c", f"kubectl apply -f {PROMOTE_V2}"]
    assert finish.executed is False


def test_same_seed_gives_byte_identical_outputs(seed_out: Path, tmp_path: Path) -> None:
    assert main(["run", str(SEED), "--out", str(tmp_path), "--quiet"]) == 0
    for name in ("status.yaml", "trace.csv", "metrics.om"):
        assert (tmp_path / name).read_bytes() == (seed_out / name).read_bytes(), name
    other = tmp_path / "other"
    assert main(["run", str(SEED), "--out", str(other), "--quiet", "--seed", "2"]) == 0
    assert (other / "metrics.om").read_bytes() != (seed_out / "metrics.om").read_bytes()


def test_rollout_plot_is_written(seed_out: Path) -> None:
    png = (seed_out / "rollout.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


@pytest.mark.parametrize("name", WITH_EXPECT)
def test_scenario_meets_its_expect_block(name: str) -> None:
    assert main(["run", str(SCENARIOS / name), "--quiet", "--check"]) == 0


def test_check_fails_with_exit_1_on_a_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dst = tmp_path / "s"
    shutil.copytree(SEED, dst)
    text = (dst / "scenario.yaml").read_text().replace("winner: iris-v2", "winner: iris-v1")
    (dst / "scenario.yaml").write_text(text)
    assert main(["run", str(dst), "--quiet", "--check"]) == 1
    err = capsys.readouterr().err
    assert "winner: expected 'iris-v1', got 'iris-v2'" in err


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("testingPattern: A/B", "testingPattern: A/B/n", "spec.strategy.testingPattern", "A/B/N"),
        (
            "    rewards: # Business rewards\n    - metric: iter8-seldon/user-engagement\n      preferredDirection: High # maximize user engagement\n",
            "",
            "spec.criteria.rewards",
            "reward",
        ),
        (
            "fieldPath: .spec.predictors[1].traffic",
            "fieldPath: spec.predictors[1].traffic",
            "spec.versionInfo.candidates[0].weightObjRef.fieldPath",
            ".",
        ),
        (
            "fieldPath: .spec.predictors[1].traffic",
            "fieldPath: .spec.predictors[5].traffic",
            "spec.versionInfo.candidates[0].weightObjRef",
            "cannot read .spec.predictors[5].traffic: no such field",
        ),
        (
            "metric: iter8-seldon/error-rate",
            "metric: iter8-seldon/error-ratio",
            "spec.criteria.objectives[2].metric",
            "unknown metric iter8-seldon/error-ratio",
        ),
    ],
)
def test_invalid_experiment_exits_2_naming_file_document_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str, message: str
) -> None:
    dst = tmp_path / "s"
    shutil.copytree(SEED, dst)
    text = (dst / "experiment.yaml").read_text()
    assert old in text
    (dst / "experiment.yaml").write_text(text.replace(old, new))
    assert main(["run", str(dst), "--quiet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "experiment.yaml: document 1 (Experiment quickstart-exp)" in err, err
    assert f"field {field}" in err and message in err, err
    assert not (tmp_path / "out").exists()
