"""The command line's contract: help for every option, one version, the exit-code table, the error
guard, outputs checked before any work, shell completion, and a start-up without plotting."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import simkit
from simkit import cli
from simkit.cli import COMMANDS, EXIT_CODES, OUTPUTS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "iris-abtest"
HIDDEN = {("live", "--prometheus-token")}  # kept for old scripts, deliberately not shown (visible in ps)


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_and_argument_has_help() -> None:
    missing = []
    for name, sub in subparsers().items():
        for action in sub._actions:
            flag = action.option_strings[-1] if action.option_strings else action.dest
            if (name, flag) in HIDDEN:
                assert action.help == argparse.SUPPRESS
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"simkit {name} {flag}")
    assert missing == [], f"options without help: {missing}"


def test_the_help_check_catches_an_option_without_help() -> None:
    """Mutation check for the test above: an option added without help is found."""
    sub = subparsers()["run"]
    sub.add_argument("--undocumented")
    assert any(not a.help for a in sub._actions if a.option_strings)


def test_top_level_help_is_for_users_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "simkit run scenarios/iris-abtest" in out and "exit codes:" in out
    assert "``" not in out  # no developer docstring markup
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\b", out, re.M), name


def test_one_version_source(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"simkit {simkit.__version__}"
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "simkit.__version__"}


def test_python_dash_m_simkit() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "simkit", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"simkit {simkit.__version__}"


# --- exit codes -------------------------------------------------------------------------------


def test_exit_code_table_matches_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\d+)` \| (.+?) \|$", readme, re.M))
    assert sorted(int(c) for c in rows) == sorted(EXIT_CODES)


def test_exit_0_and_1_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SEED), "-q", "--check"]) == 0
    wrong = tmp_path / "s"
    shutil.copytree(SEED, wrong)
    text = (wrong / "scenario.yaml").read_text()
    (wrong / "scenario.yaml").write_text(text.replace("winner: iris-v2", "winner: iris-v1"))
    assert text != (wrong / "scenario.yaml").read_text()
    capsys.readouterr()
    assert main(["run", str(wrong), "-q", "--check"]) == 1
    assert "winner" in capsys.readouterr().err


def test_exit_2_bad_input_and_3_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "missing"), "-q"]) == 2
    assert "scenario not found" in capsys.readouterr().err
    # port 9 (discard) on loopback: nothing listens, the connection is refused
    code = main(
        [
            "record",
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--experiment",
            str(SEED / "experiment.yaml"),
            str(SEED / "metrics.yaml"),
            "--start",
            "0",
            "--end",
            "60",
            "--out",
            str(tmp_path / "r.rec"),
            "-q",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3, err
    assert len(err) == 1 and "127.0.0.1:9" in err[0]
    assert not (tmp_path / "r.rec").exists()


def test_exit_130_when_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import simkit.report.commands as commands

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "cmd_strategies", interrupted)
    assert main(["strategies"]) == 130
    assert capsys.readouterr().err.strip() == "simkit strategies: interrupted"


def test_exit_130_on_a_real_sigint(tmp_path: Path) -> None:
    """SIGINT in the middle of a sweep: one line, exit 130, no output folder left behind."""
    import signal
    import time

    out = tmp_path / "bench"
    argv = [
        "bench",
        str(SEED),
        "--strategies",
        "iter8",
        "--seeds",
        "200",
        "--workers",
        "1",
        "-q",
        "--out",
        str(out),
    ]
    code = f"import sys\nprint('ready', flush=True)\nfrom simkit.cli import main\nsys.exit(main({argv!r}))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(2.0)  # well inside main(): 200 runs take far longer than that
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "simkit bench: interrupted"
    assert not out.exists()


def _broken(args: argparse.Namespace) -> int:
    return 1 // 0


@pytest.mark.parametrize("verbose", [False, True])
def test_unexpected_error_is_one_line_naming_the_work_and_the_file(
    verbose: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import simkit.report.commands as commands

    monkeypatch.setattr(commands, "cmd_describe", _broken)
    code = main(["describe", "some/status.yaml", *(["-v"] if verbose else [])])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_INTERNAL == 70
    last = err.splitlines()[-1]
    assert last.startswith(
        "simkit describe: unexpected error while describing some/status.yaml: ZeroDivisionError"
    )
    if verbose:
        assert "Traceback (most recent call last)" in err
    else:
        assert len(err.splitlines()) == 1 and "-v" in last


# --- outputs are checked before any work --------------------------------------------------------


@pytest.mark.parametrize(("command", "option"), [(c, o) for c, outs in OUTPUTS.items() for o, _ in outs])
def test_unwritable_output_fails_before_any_work(
    command: str, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = {
        "sim": ["sim", "no-such-scenario"],
        "run": ["run", "no-such-scenario"],
        "live": ["live", "no-such-experiment.yaml"],
        "serve": ["serve", "no-such-scenario", "--port", "0"],
        "bench": ["bench", "no-such-scenario"],
        "tune": ["tune", "no-such-scenario", "--strategy", "flagger", "--space", "no-such-space.yaml"],
        "replay": ["replay", "no-such.rec"],
        "calibrate": ["calibrate", "no-such.rec"],
        "record": [
            "record",
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--experiment",
            "no-such.yaml",
            "--start",
            "0",
            "--end",
            "1",
        ],
    }[command]
    code = main([*argv, option, "/dev/null/x", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    # the output is what is reported, not the missing input: nothing was read before the check
    assert (
        err == f"simkit {command}: error: command line: field {option}: cannot write /dev/null/x: "
        "/dev/null is not a directory"
    ), err


def test_check_writable_cases(tmp_path: Path) -> None:
    from simkit.files import check_writable

    (tmp_path / "file").write_text("x")
    assert check_writable(tmp_path / "new" / "deeper", "dir") is None
    assert check_writable(tmp_path / "file", "file") is None
    assert check_writable(tmp_path / "file", "dir") == f"{tmp_path / 'file'} exists and is not a directory"
    assert check_writable(tmp_path, "file") == f"{tmp_path} is a directory"
    assert check_writable(tmp_path / "file" / "x", "file") == f"{tmp_path / 'file'} is not a directory"


# --- completion and start-up -----------------------------------------------------------------------


def test_bash_completion_script_is_valid_and_knows_the_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "--strategy-params" in script and "calibrate" in script
    path = tmp_path / "simkit.bash"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("argv", [["--help"], ["run", str(SEED), "-q"]])
def test_start_up_imports_no_plotting_nor_scipy_stats(argv: list[str]) -> None:
    code = (
        f"import sys\nfrom simkit.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('matplotlib', 'scipy.stats') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_run_with_out_still_plots(tmp_path: Path) -> None:
    """Mutation check for the start-up test: with --out the plot is written (matplotlib imported)."""
    assert main(["run", str(SEED), "-q", "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "rollout.png").stat().st_size > 1000


def test_packaging_metadata() -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["license"] == "Apache-2.0" and "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    assert (ROOT / "simkit" / "py.typed").exists() and "py.typed" in pyproject["tool"]["setuptools"][
        "package-data"
    ]["simkit"]
    for name in ("CHANGELOG.md", "CONTRIBUTING.md"):
        assert (ROOT / name).stat().st_size > 500, name
    requirements = list(project["dependencies"]) + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    assert [r for r in requirements if "==" in r] == [], "ranges, not pins: the pins live in constraints.txt"
    names = {re.split(r"[<>=\[ ]", r)[0].lower() for r in requirements}
    assert not names & {"kmock", "aiohttp", "pytest-asyncio"}
    constraints = [
        line for line in (ROOT / "constraints.txt").read_text().splitlines() if not line.startswith("#")
    ]
    assert [line for line in constraints if "==" not in line] == [], (
        "only NAME==VERSION (no local wheels, no URLs)"
    )
    pinned = {line.split("==")[0].lower() for line in constraints}
    assert names <= pinned, names - pinned
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()
