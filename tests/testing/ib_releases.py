"""Older releases of IB's own Python client, installed side by side for the tests that
check FakeTWS (``slob sim``) against each: 9.81 (the last ``ibapi`` on PyPI, text only,
offers up to server version 157), 10.37.2 (up to 203), 10.45.1 (up to 223). The project's
own 10.50.2 (226) is the one in the virtual environment.

Each release is fetched once with pip, hash-checked (the pins below, taken from PyPI like
vendor/requirements.txt's), unpacked into ``<venv>/ib-releases/<version>/`` and used by
putting that folder first on a child process's ``PYTHONPATH`` -- the child's ``import
ibapi`` then loads that release while the rest (protobuf 5.29, slob) comes from the venv.
The 9.81 sdist's ``setup.py`` no longer builds with current tools, so its pure-Python
``src/ibapi`` is taken from the checked tarball as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RELEASES", "Release", "installed"]


@dataclass(frozen=True)
class Release:
    version: str
    requirement: str  # pip requirement with its sha256 pin
    filename: str
    max_client_version: int

    @property
    def label(self) -> str:
        return f"ibapi-{self.version}"


RELEASES = {
    "9.81": Release("9.81.1.post1", "ibapi==9.81.1.post1 --hash=sha256:"
                    "49f6678bf4cced996920f32ad4b48e6897749ac30ba14a661082285f4ec09cd6",
                    "ibapi-9.81.1.post1.tar.gz", 157),
    "10.37": Release("10.37.2", "ibapi-stable==10.37.2 --hash=sha256:"
                     "a6b616c9530979d440e1e6d24f47d9a287763626ded07e7fffb1890064b51989",
                     "ibapi_stable-10.37.2-py3-none-any.whl", 203),
    "10.45": Release("10.45.1", "ibapi-stable==10.45.1 --hash=sha256:"
                     "006e24c012f5e77059858b2e7ed5f1e10fbd85125096cbe5acd0c5c2adbf6b80",
                     "ibapi_stable-10.45.1-py3-none-any.whl", 223),
}


def _home() -> Path:
    return Path(os.environ.get("SLOB_IB_RELEASES_DIR") or Path(sys.prefix) / "ib-releases")


def installed(release: Release) -> Path:
    """The folder to put first on PYTHONPATH for ``release`` (fetched on first use)."""
    target = _home() / release.version
    if (target / "ibapi" / "client.py").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(release.requirement + "\n")
        download = Path(tmp) / "download"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
             "--require-hashes", "-r", str(req), "-d", str(download)],
            capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"could not fetch {release.label} with pip: {proc.stderr[-2000:]}")
        archive = download / release.filename
        staged = Path(tmp) / "staged"
        staged.mkdir()
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as z:
                z.extractall(staged, [n for n in z.namelist() if n.startswith("ibapi/")])
        else:
            prefix = f"ibapi-{release.version}/src/ibapi/"
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    if member.name.startswith(prefix) and member.isfile():
                        member.name = "ibapi/" + member.name[len(prefix):]
                        t.extract(member, staged, filter="data")
        if not (staged / "ibapi" / "client.py").exists():
            raise RuntimeError(f"{archive.name} holds no ibapi package")
        try:
            os.replace(staged, target)
        except OSError:  # another process got there first
            shutil.rmtree(staged, ignore_errors=True)
    return target
