"""``simkit tune`` end to end on two suite scenarios: the table, the files, the chosen
``strategies.yaml`` entry; the same numbers as ``simkit bench`` for the same parameters (tune
reuses the bench sweep, it does not re-implement it); common random numbers; identical results on
1 and 2 workers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from simkit.bench.summary import summarize
from simkit.bench.sweep import run_sweep
from simkit.cli import main
from simkit.strategies.options import strategy_options

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "scenarios" / "suite"
SMALL = [str(SUITE / "aa"), str(SUITE / "error-regression-high-traffic")]
SPACE = "threshold: [1, 3]\n"  # two candidates besides the default (threshold 2)


def tune(tmp_path: Path, name: str, *extra: str) -> Path:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = tmp_path / name
    args = ["tune", *SMALL, "--strategy", "flagger", "--space", str(space), "--seeds", "3", "--out", str(out)]
    assert main([*args, "-q", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tune(tmp_path_factory.mktemp("tune"), "one", "--workers", "1")


def test_tune_writes_every_file_and_a_usable_entry(serial: Path) -> None:
    assert {p.name for p in serial.iterdir()} == {
        "candidates.csv",
        "runs.parquet",
        "runs.csv",
        "pareto.png",
        "strategies.yaml",
    }
    table = pd.read_csv(serial / "candidates.csv")
    assert table["candidate"].tolist() == ["default", "c1", "c2"]
    assert table["params"].tolist() == ["(strategies.yaml)", "threshold=1", "threshold=3"]
    assert table["chosen"].sum() == 1 and table.loc[table["chosen"], "pareto"].all()
    chosen = table.loc[table["chosen"]].iloc[0]
    entry = yaml.safe_load((serial / "strategies.yaml").read_text())
    threshold = {"default": 2, "c1": 1, "c2": 3}[chosen["candidate"]]
    assert entry == {"flagger": {"stepWeight": 10, "maxWeight": 50, "threshold": threshold}}
    # the entry is a valid --strategy-params file
    (option,) = strategy_options(["flagger"], str(serial / "strategies.yaml"))
    assert option.params == entry["flagger"]
    runs = pd.read_parquet(serial / "runs.parquet")
    assert len(runs) == 3 * 2 * 3
    # common random numbers: every candidate ran on the same world seeds
    seeds = runs.groupby("strategy")["seed"].apply(lambda s: tuple(sorted(s)))
    assert seeds.nunique() == 1


def test_the_default_row_is_what_bench_measures(serial: Path) -> None:
    table = pd.read_csv(serial / "candidates.csv").set_index("candidate")
    bench = summarize(run_sweep(SMALL, ["flagger"], 3, workers=1).runs).set_index(["scenario", "strategy"])
    row = bench.loc[("ALL", "flagger")]
    for column in ("correct", "false_promotion", "false_rollback", "time_to_decision", "bad_requests"):
        assert table.loc["default", column] == pytest.approx(row[column]), column
    # and the threshold-1 candidate is bench with --strategy flagger:threshold=1
    # (an inline --strategy replaces strategies.yaml's entry in bench; tune lays the point over it)
    (option,) = strategy_options(["flagger:stepWeight=10,maxWeight=50,threshold=1"])
    other = run_sweep(SMALL, ["flagger"], 3, workers=1, options={"flagger": option}).runs
    tuned = pd.read_parquet(serial / "runs.parquet")
    mine = tuned[tuned["strategy"] == "c1"].drop(columns="strategy").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, other.drop(columns="strategy").reset_index(drop=True))


def test_two_workers_give_identical_results(serial: Path, tmp_path: Path) -> None:
    two = tune(tmp_path, "two", "--workers", "2")
    for name in ("candidates.csv", "runs.csv"):
        assert (two / name).read_bytes() == (serial / name).read_bytes(), name
    # the entry's first comment line repeats the command (its space file path differs here)
    lines = [(d / "strategies.yaml").read_text().splitlines()[1:] for d in (two, serial)]
    assert lines[0] == lines[1]


def test_json_output_lists_candidates_and_the_choice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    args = [
        "tune",
        SMALL[0],
        "--strategy",
        "flagger",
        "--space",
        str(space),
        "--seeds",
        "2",
        "--workers",
        "1",
    ]
    assert main([*args, "-q", "-o", "json", "--max-false-promotion", "0.5"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["strategy"] == "flagger" and data["false_promotion_limit"] == 0.5
    assert [c["candidate"] for c in data["candidates"]] == ["default", "c1", "c2"]
    assert data["candidates"][1]["point"] == {"threshold": 1}
    assert data["chosen"] in {"default", "c1", "c2"} and data["chosen_params"]["stepWeight"] == 10


def test_an_unknown_strategy_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    assert main(["tune", SMALL[0], "--strategy", "flager", "--space", str(space), "-q"]) == 2
    assert "unknown strategy 'flager'" in capsys.readouterr().err


@pytest.mark.timeout(180)
def test_a_local_dask_cluster_gives_identical_results(serial: Path, tmp_path: Path) -> None:
    if not os.environ.get("CI"):
        pytest.importorskip("distributed")  # the optional dask extra; `make test` installs it
    dask = tune(tmp_path, "dask", "--dask-local", "--workers", "2")
    assert (dask / "candidates.csv").read_bytes() == (serial / "candidates.csv").read_bytes()
