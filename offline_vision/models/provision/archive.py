"""Unpacking a user's archive safely: no path out of the destination, caps on members and bytes."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

from offline_vision.config import env_number
from offline_vision.errors import BadInput

SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")

# What an archive may expand to. Model bundles are incompressible weights, so a high ratio
# means a crafted archive (a "zip bomb"), not a model. OVISION_MAX_UNPACK_BYTES overrides.
MAX_UNPACK_BYTES = 32 * 2**30
MAX_MEMBERS = 10_000
MAX_RATIO = 50


def check_members(archive: Path, names: list[str]) -> None:
    for n in names:
        p = Path(n)
        if p.is_absolute() or ".." in p.parts:
            raise BadInput(f"{archive}: refusing unsafe path {n!r} in archive")


class _Budget:
    """Counts members and bytes as an archive is unpacked; refuses past the caps."""

    def __init__(self, archive: Path, dest: Path):
        self.archive, self.members, self.bytes = archive, 0, 0
        size = archive.stat().st_size
        self.max_bytes = min(
            int(env_number("OVISION_MAX_UNPACK_BYTES", MAX_UNPACK_BYTES)),
            max(size * MAX_RATIO, 2**20),
            shutil.disk_usage(dest).free,
        )

    def take(self, size: int) -> None:
        self.members += 1
        self.bytes += size
        if self.members > MAX_MEMBERS:
            raise BadInput(f"{self.archive}: more than {MAX_MEMBERS:,} members; refusing it")
        if self.bytes > self.max_bytes:
            raise BadInput(
                f"{self.archive}: would unpack to more than {self.max_bytes:,} bytes "
                f"({MAX_RATIO}× its size, the free disk space, or OVISION_MAX_UNPACK_BYTES); "
                "refusing it"
            )


def unpack(archive: Path, dest: Path) -> Path:
    budget = _Budget(archive, dest)
    try:
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as z:
                check_members(archive, z.namelist())
                for info in z.infolist():  # declared sizes bound what ZipExtFile will write
                    budget.take(info.file_size)
                    z.extract(info, dest)
        else:
            with tarfile.open(archive) as t:
                for member in t:  # one header at a time: a bomb stops at the cap
                    check_members(archive, [member.name])
                    budget.take(member.size)
                    t.extract(member, dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise BadInput(f"{archive}: not a readable archive ({e})") from e
    # An archive usually holds one top directory: descend into it.
    entries = list(dest.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
