"""Prometheus 2.42's own PromQL conformance files, from Debian's ``prometheus`` source package.

The 11 ``promql/testdata/*.test`` files of the 2.42.0 source are the outside judge of simkit's
engine (:mod:`tests.support.promqltest` runs them). They are not copied into the repository: the
first test session (or ``make promql-testdata``) fetches the source package of the installed
Prometheus' version, 2.42.0+ds, and keeps the files in ``~/.cache/simkit/prometheus-2.42``
(``$SIMKIT_CACHE`` overrides ``~/.cache/simkit``).

How, without touching the machine's apt configuration: the configured ``deb`` entries (same
mirrors, suites, components and keys) are restated as ``deb-src`` entries in a private folder,
and ``apt-get update`` / ``apt-get source --download-only`` run with ``Dir::Etc::SourceList``,
``Dir::Etc::SourceParts``, ``Dir::State::Lists`` and ``Dir::Cache`` pointing there. apt checks
the downloaded files against the signed ``Sources`` index as usual. The files are read from the
upstream tarball; the Debian patches are checked not to touch ``promql/testdata`` (so the
tarball's files are what the package carries), and the fetch fails loudly if one ever does.

Run ``python -m tests.support.prometheus_source`` to fetch (prints the folder).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION_PREFIX = "2.42.0+ds"
TESTDATA = "promql/testdata"
FILES = (
    "aggregators",
    "at_modifier",
    "collision",
    "functions",
    "histograms",
    "literals",
    "operators",
    "selectors",
    "staleness",
    "subquery",
    "trig_functions",
)
_STAMP = "SOURCE"


class SourceUnavailable(RuntimeError):
    """The source package could not be fetched (the message says which step failed)."""


def cache_dir() -> Path:
    base = Path(os.environ.get("SIMKIT_CACHE") or Path.home() / ".cache" / "simkit")
    return base / "prometheus-2.42"


def testdata_dir() -> Path:
    """The folder holding the 11 ``.test`` files, fetching them first if they are not cached."""
    folder = cache_dir() / TESTDATA
    if (cache_dir() / _STAMP).exists() and all((folder / f"{name}.test").is_file() for name in FILES):
        return folder
    fetch(cache_dir())
    return folder


def _run(args: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SourceUnavailable(
            f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}"
        )
    return proc.stdout


def _configured_sources() -> list[str]:
    """The machine's enabled ``deb`` entries, restated as deb822 ``deb-src`` stanzas."""
    out = _run(["apt-config", "shell", "LIST", "Dir::Etc::sourcelist/f", "PARTS", "Dir::Etc::sourceparts/d"])
    paths = dict(re.findall(r"(LIST|PARTS)='([^']*)'", out))
    files: list[Path] = []
    if paths.get("LIST"):
        files.append(Path(paths["LIST"]))
    parts = Path(paths.get("PARTS") or "/etc/apt/sources.list.d")
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    stanzas: list[str] = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for block in re.split(r"\n\s*\n", text):
                fields = _deb822(block)
                if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
                    keep = {k: v for k, v in fields.items() if k not in ("types", "enabled")}
                    stanzas.append("Types: deb-src\n" + "".join(f"{k}: {v}\n" for k, v in keep.items()))
        else:
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)", line)
                if m:
                    opts = m.group(1) or ""
                    signed = re.search(r"signed-by=(\S+?)[\s\]]", opts)
                    stanza = f"Types: deb-src\nURIs: {m.group(2)}\nSuites: {m.group(3)}\nComponents: {m.group(4)}\n"
                    stanzas.append(stanza + (f"Signed-By: {signed.group(1)}\n" if signed else ""))
    if not stanzas:
        raise SourceUnavailable("no enabled deb entries in the apt configuration")
    return stanzas


def _deb822(block: str) -> dict[str, str]:
    """A deb822 stanza's fields, names lower-cased (continuation lines kept)."""
    fields: dict[str, str] = {}
    key = None
    for line in block.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0].isspace() and key is not None:
            fields[key] += "\n " + line.strip()
            continue
        name, _, value = line.partition(":")
        key = name.strip().lower()
        fields[key] = value.strip()
    return fields


def fetch(dest: Path) -> None:
    """Download Debian's prometheus 2.42.0+ds source package and extract the test files to ``dest``."""
    if shutil.which("apt-get") is None:
        raise SourceUnavailable("apt-get not found: the test files come from Debian's source package")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="simkit-aptsrc-", dir=dest.parent) as tmp:
        root = Path(tmp)
        (root / "parts").mkdir()
        (root / "lists" / "partial").mkdir(parents=True)
        (root / "cache" / "archives" / "partial").mkdir(parents=True)
        (root / "parts" / "simkit-src.sources").write_text("\n".join(_configured_sources()))
        opts = [
            f"-oDir::Etc::SourceList={root / 'none.list'}",
            f"-oDir::Etc::SourceParts={root / 'parts'}",
            f"-oDir::State::Lists={root / 'lists'}",
            f"-oDir::Cache={root / 'cache'}",
            "-oAPT::Sandbox::User=root",
            "-oDebug::NoLocking=1",
            "-qq",
        ]
        update = subprocess.run(
            ["apt-get", *opts, "update"], capture_output=True, text=True, timeout=600, check=False
        )
        showsrc = subprocess.run(
            ["apt-cache", *opts, "showsrc", "prometheus"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        ).stdout
        versions = [v for v in re.findall(r"^Version: (\S+)$", showsrc, re.M) if v.startswith(VERSION_PREFIX)]
        if not versions:
            raise SourceUnavailable(
                f"no prometheus {VERSION_PREFIX} source package in the configured suites "
                f"(apt-get update: {update.stderr.strip()[-500:] or 'ok'})"
            )
        work = root / "dl"
        work.mkdir()
        _run(["apt-get", *opts, "source", "--download-only", f"prometheus={versions[0]}"], cwd=work)
        orig = next(work.glob("prometheus_*.orig.tar.*"), None)
        debian = next(work.glob("prometheus_*.debian.tar.*"), None)
        if orig is None or debian is None:
            raise SourceUnavailable(
                f"apt-get source gave no orig/debian tarball in {sorted(os.listdir(work))}"
            )
        _check_patches(debian)
        staging = root / "out"
        _extract(orig, staging / TESTDATA)
        (staging / _STAMP).write_text(f"prometheus {versions[0]} (Debian source package), {TESTDATA}\n")
        old = root / "old"
        if dest.exists():
            dest.rename(old)
        staging.rename(dest)


def _check_patches(debian: Path) -> None:
    with tarfile.open(debian) as tar:
        for member in tar.getmembers():
            if member.name.startswith("debian/patches/") and member.isfile():
                f = tar.extractfile(member)
                if f is not None and f"/{TESTDATA}/".encode() in f.read():
                    raise SourceUnavailable(
                        f"{member.name} patches {TESTDATA}: the tarball's files are not Debian's"
                    )


def _extract(orig: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    found: set[str] = set()
    with tarfile.open(orig) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if member.isfile() and "/".join(parts[1:-1]) == TESTDATA and parts[-1].endswith(".test"):
                f = tar.extractfile(member)
                assert f is not None
                (folder / parts[-1]).write_bytes(f.read())
                found.add(parts[-1][: -len(".test")])
    missing = set(FILES) - found
    if missing:
        raise SourceUnavailable(f"{orig.name} lacks {TESTDATA}/{sorted(missing)}")


if __name__ == "__main__":
    try:
        print(testdata_dir())
    except SourceUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
