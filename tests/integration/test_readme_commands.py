"""Every ``simkit ...`` line of the README's shell blocks works as written (exit 0).

The lines run in README order, through bash, in one scratch folder holding a copy of
``scenarios/`` and the seed's manifests, with ``simkit`` being this checkout's ``python -m simkit``.
Offline only: ``live``, ``serve`` and a remote ``--dask-scheduler`` need servers and are covered by
tests/live; ``record`` needs a Prometheus, so its line is parsed by the real argument parser and
carried out with the same arguments against the in-process Prometheus API over a simulated seed
run (which is what ``replay`` and ``calibrate`` then read). The benchmark lines run with
``--seeds 1`` in the normal suite; as written (``--seeds 100``) behind the ``bench`` marker.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from simkit.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
NEEDS_SERVERS = re.compile(r"^simkit (live|serve)\b|--dask-scheduler|&\s*$")


def readme_commands() -> list[str]:
    """The ``simkit`` lines of every ```sh block, continuation lines joined, comments dropped."""
    out: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        block = re.sub(r"\\\n\s*", " ", block)
        heredoc = None
        for line in block.splitlines():
            if heredoc is not None:
                heredoc = None if line.strip() == heredoc else heredoc
                continue
            m = re.search(r"<<'?(\w+)'?", line)
            if m:
                heredoc = m.group(1)
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("simkit "):
                out.append(line)
    return out


COMMANDS = readme_commands()
OFFLINE = [c for c in COMMANDS if not NEEDS_SERVERS.search(c)]


def test_the_readme_shows_what_it_must() -> None:
    """The extraction finds the lines the issue asks the README to show (and would fail without them)."""
    assert any(" -o json" in c for c in OFFLINE)
    assert any("--strategy flagger:" in c for c in OFFLINE) and any("--strategy-params" in c for c in OFFLINE)
    assert any(c.startswith("simkit replay") for c in OFFLINE) and any(
        c.startswith("simkit record") for c in OFFLINE
    )
    assert not any("--prometheus-token " in c or c.endswith("--prometheus-token") for c in COMMANDS)
    assert len(OFFLINE) >= 15, OFFLINE


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "scenarios", work / "scenarios")
    for name in ("experiment.yaml", "metrics.yaml", "abtest.yaml"):
        shutil.copy(ROOT / "scenarios" / "iris-abtest" / name, work / name)
    return work


def record_in_process(line: str, work: Path) -> None:
    """``simkit record ...`` with its own arguments, against the in-process Prometheus API."""
    from simkit.prepare import prepare
    from simkit.promql.api import PrometheusAPITransport
    from simkit.replay.commands import load_manifests
    from simkit.replay.record import RecordRequest, parse_time, record
    from simkit.sim.experiment import simulate_experiment
    from simkit.spec.bundle import load_scenario

    args = build_parser().parse_args(shlex.split(line)[1:])
    cwd = os.getcwd()
    os.chdir(work)
    try:
        files, docs, exp = load_manifests(args.experiment, args.metrics)
        db = simulate_experiment(load_scenario("scenarios/iris-abtest"), 1).world.tsdb
        req = RecordRequest(
            args.prometheus_url,
            parse_time(args.start, "--start"),
            parse_time(args.end, "--end"),
            Path(args.out),
        )
        with httpx.Client(transport=PrometheusAPITransport(db, lambda: db.max_time or 0.0)) as client:
            record(client, prepare(exp, docs), files, req)
    finally:
        os.chdir(cwd)
    assert (work / args.out).stat().st_size > 0


def run_line(line: str, work: Path) -> subprocess.CompletedProcess[str]:
    script = 'simkit() { "$SIMKIT_PYTHON" -m simkit "$@"; }\n' + line
    env = {**os.environ, "SIMKIT_PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=1200
    )


def fast(line: str) -> str:
    return re.sub(r"--seeds \d+", "--seeds 1", line)


@pytest.mark.parametrize("line", OFFLINE, ids=[c[:80] for c in OFFLINE])
def test_readme_command_works_as_written(line: str, workdir: Path) -> None:
    if line.startswith("simkit record"):
        record_in_process(line, workdir)
        return
    proc = run_line(fast(line), workdir)
    assert proc.returncode == 0, f"{line}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"


BENCH = [c for c in OFFLINE if c.startswith("simkit bench") and fast(c) != c]


@pytest.mark.bench
@pytest.mark.parametrize("line", BENCH, ids=[c[:80] for c in BENCH])
def test_readme_benchmarks_with_their_full_seed_counts(line: str, workdir: Path) -> None:
    proc = run_line(line, workdir)
    assert proc.returncode == 0, f"{line}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"
