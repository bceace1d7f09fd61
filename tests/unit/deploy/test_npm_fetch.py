"""deploy/npm.py: a pinned package is used only when its files match their
sha256. No network: the "registry" is a tarball built here, handed out by a
fake ``npm`` on PATH."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

from deploy import npm
from deploy.exceptions import DeployError, FetchFailed

PKG = npm.Package("@example/tool-linux-x64", "1.2.3")
CONTENT = b"#!/bin/sh\necho the real tool\n"
GOOD = hashlib.sha256(CONTENT).hexdigest()
BAD = "0" * 64


def make_tarball(path: Path, files: dict[str, bytes]) -> Path:
    """A tarball shaped like npm's: everything under package/."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds only an ``npm`` that drops our tarball into its cwd, as
    ``npm pack`` does, and records its arguments."""
    tarball = make_tarball(tmp_path / "example-tool-linux-x64-1.2.3.tgz", {"bin/tool": CONTENT})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys, pathlib\n"
        f"pathlib.Path({str(tmp_path / 'npm-args.txt')!r}).write_text(' '.join(sys.argv[1:]))\n"
        f"shutil.copy({str(tarball)!r}, '.')\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return tmp_path / "npm-args.txt"


def test_unpack_refuses_a_file_whose_sha256_differs(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "t.tgz", {"bin/tool": CONTENT})
    with pytest.raises(npm.ChecksumMismatch) as err:
        npm.unpack_verified(tarball, {"bin/tool": BAD}, tmp_path / "out")
    msg = str(err.value)
    assert "bin/tool" in msg and "t.tgz" in msg  # which file
    assert f"expected {BAD}" in msg and f"sha256 {GOOD}" in msg  # expected and got
    assert isinstance(err.value, FetchFailed) and isinstance(err.value, DeployError)


def test_unpack_refuses_a_tarball_without_the_pinned_file(tmp_path: Path) -> None:
    tarball = make_tarball(tmp_path / "t.tgz", {"bin/other": CONTENT})
    with pytest.raises(npm.ChecksumMismatch, match="has no bin/tool"):
        npm.unpack_verified(tarball, {"bin/tool": GOOD}, tmp_path / "out")


def test_fetch_with_a_wrong_checksum_leaves_nothing_usable(tmp_path: Path, fake_npm: Path) -> None:
    dest = tmp_path / "cache" / "tool-1.2.3"
    with pytest.raises(npm.ChecksumMismatch, match="bin/tool has sha256"):
        npm.fetch(PKG, {"bin/tool": BAD}, dest, log=lambda _m: None)
    assert not (dest / npm.MARKER).exists()
    assert not (dest / "package").exists()
    assert list(dest.iterdir()) == []  # the temp dir is gone too
    assert "pack @example/tool-linux-x64@1.2.3 --ignore-scripts" in fake_npm.read_text()


def test_fetch_verifies_marks_and_is_reused_without_npm(
        tmp_path: Path, fake_npm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "cache" / "tool-1.2.3"
    root = npm.fetch(PKG, {"bin/tool": GOOD}, dest, log=lambda _m: None)
    assert root == dest / "package"
    assert (root / "bin" / "tool").read_bytes() == CONTENT
    assert json.loads((dest / npm.MARKER).read_text())["sha256"] == {"bin/tool": GOOD}
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # a complete fetch needs no npm
    assert npm.fetch(PKG, {"bin/tool": GOOD}, dest, log=lambda _m: None) == root
    # Another pin (a new version's hash) is not satisfied by the marker.
    assert not npm.is_fetched(dest, PKG, {"bin/tool": BAD})


def test_missing_npm_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(npm.NpmMissing, match="apt-get install npm") as err:
        npm.fetch(PKG, {"bin/tool": GOOD}, tmp_path / "dest", log=lambda _m: None)
    assert isinstance(err.value, DeployError)


def test_failing_npm_pack_raises_fetch_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text("#!/bin/sh\necho 'npm error 404 Not Found' >&2\nexit 1\n")
    (bin_dir / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(FetchFailed, match="404 Not Found"):
        npm.fetch(PKG, {"bin/tool": GOOD}, tmp_path / "dest", log=lambda _m: None)
    assert not (tmp_path / "dest" / npm.MARKER).exists()
