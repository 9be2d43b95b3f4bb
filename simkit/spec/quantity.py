"""Kubernetes quantities and Go-style durations, parsed to floats.

Iter8 stores metric values and objective limits as Kubernetes quantities (``24804743n`` is
0.024804743, ``"0.01"``, ``1k``), and scenario files use durations like ``90s`` or ``1m30s``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
# ASCII digits only, as Kubernetes' parser (Python's \d also matches other scripts' digits)
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
)


def quantity_text_decimal(text: str) -> Decimal:
    """The exact value of a quantity written as text (``24804743n``, ``1.5k``, ``2Mi``);
    ValueError when it is not one. The one parser of the suffixes, for floats and for the exact
    decimals ``describe`` prints."""
    m = _QUANTITY.match(text.strip())
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2) or ""]
    except InvalidOperation:  # pragma: no cover - the regex already guards this
        raise ValueError(f"not a quantity: {text!r}") from None


def parse_quantity(value: object) -> float:
    """Parse a Kubernetes quantity (or a plain number) to a float; ValueError when it is not one."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a quantity: {value!r}")
    text = value.strip()
    if text.lower() in ("nan", "+inf", "-inf", "inf"):
        return float(text)
    return float(quantity_text_decimal(text))


def format_quantity(value: float) -> str:
    """Format a float the way etc3 stores it: an integer with a nano suffix when not whole.

    ``0.024804743`` -> ``24804743n``; ``0`` -> ``"0"``; ``95`` -> ``"95"``. NaN and infinities have
    no quantity form and are returned as Python would print them.
    """
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    nanos = Decimal(repr(value)) * Decimal(10**9)
    nano_int = int(nanos.to_integral_value(rounding="ROUND_CEILING"))
    # etc3 (resource.Quantity) rounds up to the nano scale, then strips to the shortest suffix.
    for suffix, scale in (("", 10**9), ("m", 10**6), ("u", 10**3)):
        if nano_int % scale == 0:
            return f"{nano_int // scale}{suffix}"
    return f"{nano_int}n"


# Unix seconds that RFC 3339 can write (years 1 to 9999): the range of every time simkit reads
# from an option or a file and writes back into reports, journals and recordings.
UNIX_TIME_RANGE = (-62135596800.0, 253402300799.0)


def unix_time_problem(t: float) -> str | None:
    """Why ``t`` is not a usable Unix time (None when it is)."""
    if not math.isfinite(t) or not UNIX_TIME_RANGE[0] <= t <= UNIX_TIME_RANGE[1]:
        return f"{t!r} is not a time between the years 1 and 9999"
    return None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s|d|w)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


def parse_duration(value: object) -> float:
    """Parse ``90s``, ``1m30s``, ``-60s``, ``250ms`` or a bare number (seconds) to seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r}")
    text = value.strip()
    sign = 1.0
    if text.startswith("-"):
        sign, text = -1.0, text[1:]
    elif text.startswith("+"):
        text = text[1:]
    try:
        return sign * float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            raise ValueError(f"not a duration: {value!r}")
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"not a duration: {value!r}")
    return sign * total


def duration_option(option: str, text: str) -> float:
    """A positive duration given on the command line; a bad one is one SpecError line naming it."""
    from simkit.errors import SpecError

    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise SpecError.from_cli(option, str(exc)) from None
    if value <= 0:
        raise SpecError.from_cli(option, "must be positive")
    return value


def format_duration(seconds: float) -> str:
    """Format seconds compactly: ``90`` -> ``90s``, ``0.25`` -> ``250ms``."""
    if seconds != 0 and abs(seconds) < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
