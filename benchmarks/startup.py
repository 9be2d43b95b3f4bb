"""Start-up cost of ``simkit --help`` and ``simkit run SCENARIO`` (no ``--out``), by ``python -X importtime``.

``simkit run`` used to import matplotlib (for rollout.png, even without ``--out``) and scipy.stats
(for one constant) before doing anything; both are now imported only where used. The baseline is
the same command in the same script with those two imports forced first, i.e. what start-up cost
before; the ratio is baseline / now. Each figure is the minimum over several fresh interpreters
(the machine is shared, so the minimum is the least disturbed). Prints one line per command.

    python benchmarks/startup.py [--repeat 5] [--scenario scenarios/iris-abtest]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)")
HEAVY_MODULES = ("matplotlib", "scipy.stats")
HEAVY = "import matplotlib.pyplot, scipy.stats\n"


def measure(argv: list[str], prelude: str = "") -> tuple[float, float, set[str]]:
    """(seconds of imports, wall seconds, imported module names) for one fresh interpreter."""
    # the child reports which heavy modules it holds at exit (importtime does not list every
    # module that a package's lazy __getattr__ loads, scipy.stats among them)
    code = (
        f"{prelude}import sys\ntry:\n    from simkit.cli import main\n    sys.exit(main({argv!r}))\n"
        f"finally:\n    print('HELD', *[m for m in {HEAVY_MODULES!r} if m in sys.modules], file=sys.stderr)"
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    total, modules = 0, set[str]()
    for line in proc.stderr.splitlines():
        if line.startswith("HELD"):
            modules |= set(line.split()[1:])
        m = LINE.match(line)
        if m and m.group(2) == "":  # top-level imports: their cumulative times add up to the total
            total += int(m.group(1))
    if proc.returncode not in (0,):
        raise SystemExit(f"simkit {' '.join(argv)} failed: {proc.stderr[-500:]}")
    return total / 1e6, wall, modules


def best(argv: list[str], repeat: int, prelude: str = "") -> tuple[float, float, set[str]]:
    runs = [measure(argv, prelude) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="fresh interpreters per figure (default 5)")
    ap.add_argument("--scenario", default="scenarios/iris-abtest", help="scenario for simkit run")
    args = ap.parse_args()
    imports, wall, modules = best(["--help"], args.repeat)
    print(
        f"simkit --help: imports {imports:.3f} s, wall {wall:.3f} s; heavy modules imported: {heavy(modules)}"
    )
    argv = ["run", args.scenario, "-q"]
    now_imports, now_wall, modules = best(argv, args.repeat)
    before_imports, before_wall, _ = best(argv, args.repeat, HEAVY)
    print(
        f"simkit {' '.join(argv)}: imports {now_imports:.3f} s (baseline {before_imports:.3f} s, "
        f"ratio {before_imports / now_imports:.2f}x); wall {now_wall:.3f} s (baseline {before_wall:.3f} s, "
        f"ratio {before_wall / now_wall:.2f}x); heavy modules imported: {heavy(modules)}"
    )
    return 0


def heavy(modules: set[str]) -> str:
    return ", ".join(sorted(m for m in HEAVY_MODULES if m in modules)) or "none"


if __name__ == "__main__":
    sys.exit(main())
