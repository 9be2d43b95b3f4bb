"""The ``simkit`` command line: parses arguments, checks outputs, calls one layer function.

Each sub-command lives in a ``commands`` module of the layer that owns it and is imported only
when used, so ``simkit --help`` stays fast and ``simkit sim`` never imports kubernetes. The
options are declared in :mod:`simkit.cli_options`. This module owns what every command shares:
the exit codes (:data:`EXIT_CODES`), the error guard (a :class:`~simkit.errors.SimkitError` is one
line and its exit code; anything else is one line naming what was being done, exit 70, and the
traceback only with ``-v``), logging, and the check that every output can be written before any
work starts.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from simkit.cli_options import COMMANDS, OUTPUTS, build_parser
from simkit.errors import SimkitError, SpecError

# logging, datetime and simkit.files are imported where used: `simkit --help` needs none of them

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_BACKEND, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "--check found a mismatch with spec.expect, or the experiment failed",
    EXIT_BAD_INPUT: "bad input: a manifest, scenario, recording, option or output path (one line names it)",
    EXIT_BACKEND: "a backend is unreachable or failing: Prometheus or the Kubernetes API (retry later)",
    EXIT_INTERNAL: "an unexpected error, most likely a bug in simkit (-v prints the traceback)",
    EXIT_INTERRUPTED: "interrupted (SIGINT/SIGTERM), stopped between steps",
}
# commands that run for a long time log with timestamps (RFC 3339, UTC)
_TIMESTAMPED = {"live", "serve", "record"}


def rfc3339_millis(created: float) -> str:
    """A log record's time as RFC 3339 in UTC with milliseconds: 2021-06-15T15:20:18.123Z."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def configure_logging(command: str, verbose: int, quiet: bool) -> None:
    """Log records of ``simkit.*`` to stderr: INFO by default, DEBUG with -v, WARNING with -q."""
    import logging

    class _RFC3339Formatter(logging.Formatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return rfc3339_millis(record.created)

    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(asctime)s %(levelname)s %(message)s" if command in _TIMESTAMPED else "%(message)s"
    handler.setFormatter(_RFC3339Formatter(fmt))
    root = logging.getLogger("simkit")
    for old in list(root.handlers):
        if getattr(old, "_simkit_cli", False):
            root.removeHandler(old)
    handler._simkit_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def check_outputs(args: argparse.Namespace) -> None:
    """Every output option of the command must be writable: found before any work, not after it."""
    from simkit.files import check_writable

    for option, kind in OUTPUTS.get(args.command, ()):
        value = getattr(args, option.lstrip("-").replace("-", "_"), None)
        if value:
            problem = check_writable(value, kind)
            if problem:
                raise SpecError.from_cli(option, f"cannot write {value}: {problem}")


def doing(args: argparse.Namespace) -> str:
    """What the command was doing, for the one-line report of an unexpected error."""
    template = COMMANDS[args.command].doing
    try:
        values = {k: (" ".join(map(str, v)) if isinstance(v, list) else "" if v is None else v)
                  for k, v in vars(args).items()}
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = int(getattr(args, "verbose", 0) or 0)
    configure_logging(args.command, verbose, bool(getattr(args, "quiet", False)))
    spec = COMMANDS[args.command]
    try:
        check_outputs(args)
        func = getattr(importlib.import_module(spec.module), spec.function)
        code = func(args)
    except SimkitError as err:
        print(f"simkit {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"simkit {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the guard: one line, not a traceback, unless -v
        if verbose:
            import traceback

            traceback.print_exc()
        text = " ".join(str(exc).split()) or "(no message)"
        hint = "" if verbose else "; run with -v for the traceback"
        print(f"simkit {args.command}: unexpected error while {doing(args)}: {type(exc).__name__}: {text}"
              f" (exit {EXIT_INTERNAL}{hint})", file=sys.stderr)
        return EXIT_INTERNAL
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
