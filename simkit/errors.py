"""One exception tree for everything a user can get wrong.

    SimkitError                 exit code 2 unless stated; printed as one line, never a traceback
    ├── SpecError               a manifest or scenario file: names file, document and field
    ├── QueryError              PromQL that does not parse or is outside the supported subset:
    │                           names the construct and its position
    ├── MetricError             a Metric CRD that cannot be evaluated (bad jq, bad template, ...)
    ├── BackendError            Prometheus or the Kubernetes API unreachable / answering badly (exit 3)
    │   └── ConflictError       a Kubernetes 409 that survived retries
    ├── DataError               a recording or OpenMetrics file that cannot be used
    └── CheckFailed             `--check` found a mismatch with the scenario's `expect` (exit 1)

The CLI catches SimkitError, prints ``str(err)`` on stderr and exits with ``err.exit_code``.
Anything else is a bug: the CLI prints one line naming what it was doing (exit 70), and the
traceback with ``-v``. The exit codes are listed in ``simkit.cli.EXIT_CODES`` and the README.
"""

from __future__ import annotations

from dataclasses import dataclass


class SimkitError(Exception):
    """Base of every user-facing error."""

    exit_code = 2


@dataclass(frozen=True)
class Location:
    """Where in the user's input something is: file, document (index, kind, name), field path."""

    file: str
    index: int | None = None  # 0-based document index inside a multi-document file
    kind: str | None = None
    name: str | None = None

    def describe(self) -> str:
        parts = [self.file]
        if self.index is not None:
            doc = f"document {self.index + 1}"
            if self.kind or self.name:
                doc += f" ({self.kind or '?'} {self.name or '?'})"
            parts.append(doc)
        return ": ".join(parts)


class SpecError(SimkitError):
    """Invalid manifest or scenario input. The message always names file, document and field."""

    def __init__(self, where: Location, field: str | None, message: str) -> None:
        self.where = where
        self.field = field
        self.message = message
        text = where.describe()
        if field:
            text += f": field {field}"
        super().__init__(f"{text}: {message}")

    @classmethod
    def from_cli(cls, option: str, message: str) -> SpecError:
        """A bad command-line value (there is no file or document to name)."""
        return cls(Location("command line"), option, message)


class QueryError(SimkitError):
    """A PromQL expression that cannot be parsed or evaluated by simkit."""

    def __init__(self, message: str, position: int | None = None, query: str | None = None) -> None:
        self.message = message
        self.position = position
        self.query = query
        text = message
        if position is not None:
            text = f"{message} at position {position}"
            if query is not None:
                snippet = query[max(0, position - 20) : position + 20].replace("\n", " ")
                text += f" (near {snippet!r})"
        super().__init__(text)


class MetricError(SimkitError):
    """A Metric object that cannot be evaluated at all (as opposed to a query giving no value)."""


class BackendError(SimkitError):
    """Prometheus or the Kubernetes API is unreachable or answered with something unusable.

    Exit code 3, not 2, so that a script can tell "retry later" from "fix your input"."""

    exit_code = 3


class ConflictError(BackendError):
    """A Kubernetes write kept conflicting (HTTP 409) after re-reading and retrying."""


class DataError(SimkitError):
    """A data file (OpenMetrics, recording) that cannot be used."""


class CheckFailed(SimkitError):
    """The outcome of a run differs from the scenario's `expect` block."""

    exit_code = 1
