"""Bad scenario input: one line on stderr naming file, document and field, exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simkit.cli import main

SEED = Path(__file__).resolve().parents[2] / "scenarios" / "iris-abtest"


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    dst = tmp_path / "iris"
    shutil.copytree(SEED, dst)
    return dst


def run_sim(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    out = tmp_path / "out.om"
    code = main(["sim", str(path), "--duration", "20s", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    if code != 0:
        assert not out.exists(), "a failed run must not leave an output file"
    return code, err


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_unknown_field(scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(scenario / "scenario.yaml", "concurrency: 4", "concurency: 4")
    code, err = run_sim(scenario, tmp_path, capsys)
    assert code == 2
    assert len(err.splitlines()) == 1
    assert (
        "scenario.yaml: document 1 (Scenario iris-abtest): field spec.predictors.ns-production/iris/baseline.concurency: unknown field"
        in err
    )


def test_missing_manifest_file(scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scenario / "metrics.yaml").unlink()
    code, err = run_sim(scenario, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert (
        "scenario.yaml: document 1 (Scenario iris-abtest): field spec.manifests[1]: manifest file 'metrics.yaml' not found"
        in err
    )


def test_weights_not_summing_to_100(
    scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit(scenario / "abtest.yaml", "traffic: 0", "traffic: 10")
    code, err = run_sim(scenario, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert (
        "abtest.yaml: document 2 (SeldonDeployment iris): field spec.predictors[*].traffic: Traffic must sum to 100 for multiple predictors (got 110)"
        in err
    )


def test_negative_qps(scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(scenario / "scenario.yaml", "qps: 5,", "qps: -5,")
    code, err = run_sim(scenario, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "field spec.load[0].qps: Input should be greater than or equal to 0" in err
    assert "scenario.yaml: document 1 (Scenario iris-abtest)" in err


def test_malformed_yaml(scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(scenario / "experiment.yaml", "  target: iris", "  target: [iris")
    code, err = run_sim(scenario, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "experiment.yaml: malformed YAML (line" in err


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            'to: "ingress:ns-production/iris"',
            'to: "ingress:ns-production/iri"',
            "spec.load[0].to",
            "no SeldonDeployment 'ns-production/iri'",
        ),
        (
            "ns-production/iris/candidate:\n",
            "ns-production/iris/canary:\n",
            "spec.predictors['ns-production/iris/canary']",
            "no such predictor",
        ),
        (
            "latency: {distribution: lognormal, median: 12ms, p99: 31ms}",
            "latency: {distribution: lognormal, median: 12ms}",
            "spec.predictors.ns-production/iris/baseline.latency",
            "lognormal needs median and p99",
        ),
        (
            "start: -30s,\n       payload: {data",
            "start: soon,\n       payload: {data",
            "spec.load[0].start",
            "not a duration",
        ),
    ],
)
def test_other_bad_fields(
    scenario: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    field: str,
    message: str,
) -> None:
    edit(scenario / "scenario.yaml", old, new)
    code, err = run_sim(scenario, tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"field {field}" in err and message in err, err


def test_bad_duration_option(scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sim", str(scenario), "--duration", "ten", "--out", str(tmp_path / "x.om")])
    assert code == 2
    assert "--duration" in capsys.readouterr().err
