"""Atomic file writes: never leave a half-written output, whatever interrupts the writer.

Every output simkit writes (OpenMetrics, recordings, status.yaml, trace.csv, PNG plots, Parquet)
goes through :func:`atomic_path`: the writer fills a temporary file beside the target, which is
renamed over it only when complete, with the permissions a plain ``open()`` would have given.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def public_mode() -> int:
    """0o666 minus the umask: what ``open()`` would have given (mkstemp makes files 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it goes."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, public_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def check_writable(path: str | Path, kind: str) -> str | None:
    """Why ``path`` cannot be written as a ``kind`` ("file" or "dir") output, or None if it can.

    Checked before a command does any work, so that a bad ``--out`` costs nothing: the path (or,
    when it does not exist yet, its nearest existing ancestor, where the missing folders would be
    created) must be a writable directory; an existing file output must be a writable file."""
    target = Path(path)
    if target.exists():
        if kind == "dir":
            if not target.is_dir():
                return f"{target} exists and is not a directory"
            return None if os.access(target, os.W_OK | os.X_OK) else f"{target} is not writable"
        if target.is_dir():
            return f"{target} is a directory"
        if not os.access(target, os.W_OK):
            return f"{target} is not writable"
        target = target.parent  # replaced atomically: a temporary file goes beside it
    else:
        target = target.parent
    ancestor = target
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None
