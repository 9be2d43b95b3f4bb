"""The sweep end to end: identical results on 1 worker, 2 workers and a local Dask cluster; the
``simkit bench`` command and its files; bad input; the benchmark notebook, executed."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from simkit.bench.sweep import run_sweep
from simkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "scenarios" / "suite"
SMALL = [str(SUITE / "aa"), str(SUITE / "error-regression-high-traffic")]


@pytest.fixture(scope="module")
def serial() -> pd.DataFrame:
    return run_sweep(SMALL, ["iter8", "sequential"], 2, workers=1)


def test_two_process_workers_give_identical_results(serial) -> None:  # type: ignore[no-untyped-def]
    pooled = run_sweep(SMALL, ["iter8", "sequential"], 2, workers=2)
    pd.testing.assert_frame_equal(serial.runs, pooled.runs)
    pd.testing.assert_frame_equal(serial.trajectories, pooled.trajectories)
    assert len(serial.runs) == 8
    assert serial.runs["seed"].nunique() == 4  # common random numbers: strategies share the seeds


@pytest.mark.timeout(180)
def test_a_local_dask_cluster_gives_identical_results(serial) -> None:  # type: ignore[no-untyped-def]
    if not os.environ.get("CI"):
        pytest.importorskip("distributed")  # the optional dask extra; `make test` installs it
    dask = run_sweep(SMALL, ["iter8", "sequential"], 2, dask_local=True)
    pd.testing.assert_frame_equal(serial.runs, dask.runs)
    pd.testing.assert_frame_equal(serial.trajectories, dask.trajectories)


def test_bench_command_prints_the_table_and_writes_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "bench",
            str(SUITE / "aa"),
            str(SUITE / "three-versions"),
            "--strategies",
            "iter8,flagger",
            "--seeds",
            "2",
            "--workers",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "three-versions" in captured.out and "flagger" in captured.out and "ALL" in captured.out
    assert "skipped flagger on suite-three-versions" in captured.err
    names = {p.name for p in out.iterdir()}
    assert names == {
        "runs.parquet",
        "runs.csv",
        "summary.parquet",
        "summary.csv",
        "trajectories.parquet",
        "truth.csv",
        "panel.png",
        "weights.png",
    }
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 2 * 2 + 2  # flagger does not run the A/B/N scenario
    pd.testing.assert_frame_equal(runs, pd.read_csv(out / "runs.csv"), check_dtype=False)
    assert (out / "panel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--strategies", "nope"], "unknown strategy 'nope'"),
        (["--strategies", "iter8", "--seeds", "0"], "--seeds"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", str(SUITE / "aa"), *argv, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.timeout(300)
def test_the_benchmark_notebook_runs(tmp_path: Path) -> None:
    path = ROOT / "notebooks" / "benchmark-strategies.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "thompson" in text and "regret" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)


@pytest.mark.parametrize("name", sorted(d.name for d in SUITE.iterdir() if (d / "scenario.yaml").is_file()))
def test_suite_scenarios_pass_their_expect_block(name: str) -> None:
    assert main(["run", str(SUITE / name), "--quiet", "--check"]) == 0
