"""The outside programs the benchmark drives, installed when missing, and the machine's facts.

h2load (Debian ``nghttp2-client``) and wrk come from apt-get when we are root; the Express
peer's packages come from its own lock file (``npm ci``). A tool that cannot be had makes
its sections report "not run", never fail the whole benchmark.

Usage:
    tools = ensure_tools(install=True)
    if tools.h2load: ...
    facts = machine_facts()
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["EXPRESS_DIR", "MachineFacts", "Tools", "ensure_tools", "machine_facts"]

EXPRESS_DIR = Path(__file__).resolve().parent / "peers" / "express"
_APT_PACKAGES = {"h2load": "nghttp2-client", "nghttp": "nghttp2-client", "wrk": "wrk", "node": "nodejs"}


@dataclass(frozen=True, slots=True)
class Tools:
    """Paths of the tools found (None: missing), and why a missing one is missing."""

    h2load: str | None
    nghttp: str | None
    wrk: str | None
    node: str | None
    express_ready: bool
    notes: tuple[str, ...]


def _run(argv: list[str], timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)  # noqa: S603


def _apt_install(packages: list[str]) -> str | None:
    """apt-get the packages; returns a note when that is impossible or fails."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"cannot install {', '.join(packages)}: not root or no apt-get"
    print(f"bench: apt-get install {' '.join(packages)}", file=sys.stderr)
    update = _run(["apt-get", "update", "-qq"])
    if update.returncode != 0:
        return f"apt-get update failed: {update.stderr.strip()[-200:]}"
    install = _run(["apt-get", "install", "-y", "-qq", *packages])
    if install.returncode != 0:
        return f"apt-get install failed: {install.stderr.strip()[-200:]}"
    return None


def _npm_ci() -> str | None:
    """``npm ci`` in the Express peer, unless its node_modules is newer than its lock file."""
    stamp = EXPRESS_DIR / "node_modules" / ".installed"
    lock = EXPRESS_DIR / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm not found: the Express peer is not run"
    print("bench: npm ci --prefix bench/peers/express", file=sys.stderr)
    result = _run([npm, "ci", "--prefix", str(EXPRESS_DIR), "--no-audit", "--no-fund", "--loglevel=error"])
    if result.returncode != 0:
        return f"npm ci failed: {result.stderr.strip()[-300:]}"
    stamp.touch()
    return None


def ensure_tools(*, install: bool) -> Tools:
    """Find h2load, nghttp, wrk and node; install what is missing when ``install``."""
    notes: list[str] = []
    missing = sorted({pkg for tool, pkg in _APT_PACKAGES.items() if shutil.which(tool) is None})
    if missing and install:
        if shutil.which("node") is None and "nodejs" in missing:
            missing.append("npm")
        note = _apt_install(missing)
        if note:
            notes.append(note)
    node = shutil.which("node")
    express_ready = False
    if node is not None:
        note = _npm_ci() if install else None
        if note:
            notes.append(note)
        express_ready = (EXPRESS_DIR / "node_modules" / "express-jwt").is_dir()
    for tool in ("h2load", "wrk", "node"):
        if shutil.which(tool) is None:
            notes.append(f"{tool} not found: its sections are not run")
    return Tools(
        h2load=shutil.which("h2load"),
        nghttp=shutil.which("nghttp"),
        wrk=shutil.which("wrk"),
        node=node,
        express_ready=express_ready,
        notes=tuple(notes),
    )


@dataclass(frozen=True, slots=True)
class MachineFacts:
    date: str
    cpus: int
    cpu_model: str
    kernel: str
    python: str
    versions: dict[str, str]
    load_average: str


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version_of(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    result = _run(argv, timeout_s=10)
    text = (result.stdout or result.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine_facts() -> MachineFacts:
    versions = {}
    for package in ("grpcio", "jwcrypto", "cryptography", "aiohttp", "protobuf"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["node"] = _version_of(["node", "--version"])
    versions["h2load"] = _version_of(["h2load", "--version"])
    versions["wrk"] = _version_of(["wrk", "-v"]).split(" Copyright")[0]
    return MachineFacts(
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        kernel=platform.release(),
        python=platform.python_version(),
        versions=versions,
        load_average=" ".join(f"{v:.2f}" for v in os.getloadavg()),
    )
