"""Bad input over every command, table-driven: exit code 2, one line on stderr naming what is
wrong (the option, or the file and field), never a traceback, never a hang.

Each row is (command, what is wrong, the arguments, a phrase the message must contain). The
inputs are the classes a new user tries: non-finite and overflowing numbers (``.inf``, ``.nan``,
``1e999``, ``1e300``), negative seeds, unknown names, a directory where a file belongs, and
expressions nested deeper than any recursion limit. ``serve`` runs in a subprocess (it would
serve forever if it accepted the input); everything else runs in-process through ``main``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from simkit.cli import main
from simkit.prepare import prepare
from simkit.promql.api import PrometheusAPITransport
from simkit.replay.commands import load_manifests
from simkit.replay.record import RecordRequest, record
from simkit.sim.experiment import simulate_experiment
from simkit.spec.bundle import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "iris-abtest"
STATUS = ROOT / "tests" / "data" / "iter8" / "seed_status.yaml"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder with a recording of the seed run and an OpenMetrics file."""
    root = tmp_path_factory.mktemp("bad")
    run = simulate_experiment(load_scenario(SEED), 1)
    db = run.world.tsdb
    files, docs, exp = load_manifests(str(SEED / "experiment.yaml"), [str(SEED / "metrics.yaml")])
    client = httpx.Client(transport=PrometheusAPITransport(db, lambda: db.max_time or 0.0))
    record(
        client,
        prepare(exp, docs),
        files,
        RecordRequest("http://p", db.min_time or 0, db.max_time or 0, root / "seed.rec"),
    )
    from simkit.tsdb.openmetrics import save_openmetrics

    save_openmetrics(db, root / "seed.om")
    return root


def scenario_with(work: Path, name: str, file: str, old: str, new: str) -> str:
    """A copy of the seed scenario with one edit in one of its files."""
    folder = work / name
    if not folder.exists():
        shutil.copytree(SEED, folder)
        path = folder / file
        text = path.read_text()
        assert old in text, (file, old)
        path.write_text(text.replace(old, new, 1))
    return str(folder)


def file_with(work: Path, name: str, source: Path, old: str, new: str) -> str:
    path = work / name
    text = source.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return str(path)


def recording_with(work: Path, old: str, new: str) -> str:
    """A copy of the seed recording with one edit in its header line."""
    path = work / f"edited-{abs(hash((old, new)))}.rec"
    header, _, rest = (work / "seed.rec").read_text().partition("\n")
    assert old in header, old
    path.write_text(header.replace(old, new, 1) + "\n" + rest)
    return str(path)


QPS = "qps: 5, start: -30s"
UPPER = "upperLimit: 2000"
Args = Callable[[Path], list[str]]
CASES: list[tuple[str, str, Args, str]] = [
    (
        "run",
        "qps .inf",
        lambda w: ["run", scenario_with(w, "qps-inf", "scenario.yaml", QPS, "qps: .inf, start: -30s")],
        "spec.load[0].qps",
    ),
    (
        "sim",
        "qps .inf",
        lambda w: [
            "sim",
            scenario_with(w, "qps-inf", "scenario.yaml", QPS, "qps: .inf, start: -30s"),
            "--out",
            str(w / "x.om"),
        ],
        "spec.load[0].qps",
    ),
    (
        "run",
        "qps 1e999",
        lambda w: ["run", scenario_with(w, "qps-big", "scenario.yaml", QPS, "qps: 1e999, start: -30s")],
        "spec.load[0].qps",
    ),
    (
        "run",
        "upperLimit .nan",
        lambda w: [
            "run",
            "--quiet",
            scenario_with(w, "ul-nan", "experiment.yaml", UPPER, "upperLimit: .nan"),
        ],
        "upperLimit",
    ),
    (
        "run",
        "upperLimit .inf",
        lambda w: [
            "run",
            "--quiet",
            scenario_with(w, "ul-inf", "experiment.yaml", UPPER, "upperLimit: .inf"),
        ],
        "upperLimit",
    ),
    (
        "analyze",
        "upperLimit .inf",
        lambda w: ["analyze", file_with(w, "ul-inf.yaml", STATUS, "upperLimit: 2000", "upperLimit: .inf")],
        "upperLimit",
    ),
    (
        "describe",
        "metric value 1e999",
        lambda w: ["describe", file_with(w, "big.yaml", STATUS, "value: 13352538n", "value: 1e999")],
        "value",
    ),
    (
        "analyze",
        "metric value 1e999",
        lambda w: ["analyze", file_with(w, "big.yaml", STATUS, "value: 13352538n", "value: 1e999")],
        "value",
    ),
    (
        "run",
        "undefined template variable in an action",
        lambda w: [
            "run",
            "--quiet",
            scenario_with(w, "novar", "experiment.yaml", "{{ .promote }}", "{{ .promot }}"),
        ],
        "field spec.strategy.actions.finish[0].with.args[1]: {{{{ .promot }}}} is not a variable of version iris-v1",
    ),
    ("run", "--strategy nope", lambda w: ["run", "--quiet", str(SEED), "--strategy", "nope"], "--strategy"),
    (
        "run",
        "kind typo in a manifest",
        lambda w: [
            "run",
            scenario_with(w, "kind", "abtest.yaml", "kind: SeldonDeployment", "kind: SeldonDeploymnet"),
        ],
        "abtest.yaml: document 2 (SeldonDeploymnet iris): field kind",
    ),
    *[
        (cmd, "--seed -1", args, "--seed")
        for cmd, args in [
            ("sim", lambda w: ["sim", str(SEED), "--out", str(w / "x.om"), "--seed", "-1"]),
            ("run", lambda w: ["run", "--quiet", str(SEED), "--seed", "-1"]),
            ("metrics", lambda w: ["metrics", str(SEED), "--seed", "-1"]),
            ("analyze", lambda w: ["analyze", str(STATUS), "--seed", "-1"]),
            ("replay", lambda w: ["replay", str(w / "seed.rec"), "--seed", "-1"]),
            (
                "calibrate",
                lambda w: ["calibrate", str(w / "seed.rec"), "--out", str(w / "cal"), "--seed", "-1"],
            ),
        ]
    ],
    (
        "replay",
        "recording end 1e300",
        lambda w: ["replay", recording_with(w, '"end":', '"end":1e300,"was":'), "--quiet"],
        "header's end 1e+300 is not a time",
    ),
    (
        "calibrate",
        "recording end 1e300",
        lambda w: ["calibrate", recording_with(w, '"end":', '"end":1e300,"was":'), "--out", str(w / "cal2")],
        "header's end 1e+300 is not a time",
    ),
    (
        "record",
        "--end 1e300",
        lambda w: [
            "record",
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--experiment",
            str(SEED / "experiment.yaml"),
            str(SEED / "metrics.yaml"),
            "--start",
            "0",
            "--end",
            "1e300",
            "--out",
            str(w / "r.rec"),
        ],
        "--end: 1e+300",
    ),
    (
        "bench",
        "--dask-scheduler notaurl",
        lambda w: ["bench", str(SEED), "--seeds", "1", "--quiet", "--dask-scheduler", "notaurl"],
        "--dask-scheduler",
    ),
    (
        "promql",
        "--time 1e300",
        lambda w: ["promql", "up", "--data", str(w / "seed.om"), "--time", "1e300"],
        "1e+300",
    ),
    ("promql", "--data a directory", lambda w: ["promql", "up", "--data", str(w)], "{work}: is a directory"),
    (
        "promql",
        "5,000 nested parentheses",
        lambda w: ["promql", "(" * 5000 + "1" + ")" * 5000, "--data", str(w / "seed.om"), "--time", "0"],
        "nest",
    ),
    (
        "promql",
        "20,000 unary minuses",
        lambda w: ["promql", "--data", str(w / "seed.om"), "--time", "0", "--", "-" * 20000 + "1"],
        "nest",
    ),
]


@pytest.mark.parametrize(
    ("command", "what", "args", "phrase"), CASES, ids=[f"{c}: {w}" for c, w, _, _ in CASES]
)
def test_bad_input_is_one_line_and_exit_2(
    command: str, what: str, args: Args, phrase: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(args(work))
    err = capsys.readouterr().err.strip()
    assert code == 2, f"exit {code}: {err[-2000:]}"
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err[-2000:]
    assert phrase.format(work=work) in err, err


def test_serve_with_a_negative_seed_exits_2_at_once(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "simkit.cli", "serve", str(SEED), "--port", "0", "--seed", "-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and "--seed" in err, err[-2000:]
