"""Architecture contracts (DESIGN.md §2): layers import downwards only, sim and live never import
each other, only sim imports simpy, only live imports kubernetes, strategies do no I/O; and the
curated public API resolves."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import simkit

PKG = Path(simkit.__file__).parent
# lower rank = lower layer; a module may import only its own rank or below
RANK = {
    "errors": 0,
    "ports": 0,
    "files": 0,
    "formats": 0,
    "loopback": 0,
    "spec": 1,
    "tsdb": 2,
    "promql": 3,
    "metrics": 4,
    "strategies": 4,
    "actions": 5,
    "records": 5,
    "control": 5,
    "prepare": 5,
    "views": 5,
    "sim": 6,
    "live": 6,
    "replay": 6,
    "report": 7,
    "bench": 7,
    "serve": 7,
    "tune": 8,
    "plan": 8,  # above bench: scores candidates with bench's sweep and summary
    "cli": 9,
    "cli_options": 9,
    "__init__": 10,
    "__main__": 10,
}

# A ``commands`` module (a package's command-line adapter) gets no exception: it may import only
# its own package and the layers strictly below, not a neighbour of the same rank (sim.commands
# importing replay) and not a layer above (live.commands importing report). The run views that
# live and replay print (describe, status.yaml, trace.csv, rollout.png) sit in ``views``, below them.


def modules() -> list[tuple[str, Path]]:
    return [(".".join(p.relative_to(PKG.parent).with_suffix("").parts), p) for p in sorted(PKG.rglob("*.py"))]


def imports(path: Path, source: str | None = None) -> set[str]:
    """Every absolute import in the module, at any depth (function-level lazy imports included)."""
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def part(module: str) -> str:
    """The layer of a module: its top-level package (or module) under ``simkit``."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else "__init__"


def check_imports(name: str, imported: set[str]) -> None:
    """AssertionError naming the first import of module ``name`` that breaks a layering rule."""
    mine = part(name)
    assert mine in RANK, f"{name}: unknown layer {mine!r}; add it to RANK in this test"
    for imp in sorted(imported):
        top = imp.split(".")[0]
        if top == "simpy":
            assert mine == "sim", f"{name} imports simpy; only simkit.sim may"
        if top == "kubernetes":
            assert mine == "live", f"{name} imports kubernetes; only simkit.live may"
        if top != "simkit" or imp == "simkit":
            continue
        other = part(imp)
        assert {mine, other} != {"sim", "live"}, f"{name} imports {imp}: sim and live never import each other"
        assert RANK[other] <= RANK[mine], (
            f"{name} (layer {mine}) imports {imp} (layer {other}): upward import"
        )
        if name.endswith(".commands"):
            assert other == mine or RANK[other] < RANK[mine], (
                f"{name} imports {imp}: a commands module may import only its own package and the layers below"
            )
        if mine == "strategies":
            assert other in ("errors", "ports", "spec", "strategies"), (
                f"{name} imports {imp}: strategies do no I/O"
            )


@pytest.mark.parametrize(("name", "path"), modules(), ids=[m for m, _ in modules()])
def test_layering(name: str, path: Path) -> None:
    check_imports(name, imports(path))


@pytest.mark.parametrize(
    ("name", "imported", "message"),
    [
        ("simkit.sim.commands", {"simkit.live.kube"}, "sim and live never import each other"),
        ("simkit.sim.commands", {"simkit.replay.recording"}, "only its own package and the layers below"),
        ("simkit.report.commands", {"simkit.bench.sweep"}, "only its own package and the layers below"),
        ("simkit.live.commands", {"simkit.serve.server"}, "upward import"),
        ("simkit.live.commands", {"simkit.report.describe"}, "upward import"),
        ("simkit.replay.commands", {"simkit.report.run"}, "upward import"),
        ("simkit.replay.commands", {"simkit.sim.engine"}, "only its own package and the layers below"),
        ("simkit.views.trace", {"simkit.sim.world"}, "upward import"),
        ("simkit.control", {"simkit.sim.world"}, "upward import"),
    ],
)
def test_the_rules_catch_what_they_forbid(name: str, imported: set[str], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_imports(name, imported)


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("simkit.live.commands", "from simkit.report.run import write_text"),
        ("simkit.replay.commands", "from simkit.report.calibration import calibrate_folder"),
        ("simkit.replay.commands", "from simkit.sim.engine import make_world"),  # a same-rank neighbour
    ],
)
def test_an_upward_import_added_to_a_commands_module_fails(module: str, line: str) -> None:
    """Mutation check on the real files: the two upward imports the commands modules once had (and
    an import of a same-rank neighbour), added inside a function as lazy imports are, make the layering
    check fail."""
    path = PKG.parent / (module.replace(".", "/") + ".py")
    check_imports(module, imports(path))  # as it is: clean
    mutated = path.read_text() + f"\n\ndef _mutant() -> None:\n    {line.strip()}\n"
    with pytest.raises(AssertionError, match="upward import|only its own package"):
        check_imports(module, imports(path, mutated))


def test_strategies_use_no_global_randomness() -> None:
    for name, path in modules():
        if part(name) == "strategies":
            text = path.read_text()
            assert "np.random.seed" not in text and "import random" not in text, name


def test_public_api_resolves_and_import_is_light() -> None:
    for name in simkit.__all__:
        assert getattr(simkit, name) is not None, name
    code = "import sys, simkit; print(','.join(m for m in ('simpy','httpx','kubernetes','numpy') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"import simkit pulled in {out}"
