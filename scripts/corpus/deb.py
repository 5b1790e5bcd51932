"""Reads the files of a Debian package (.deb) with Python's standard library alone, so the
corpus builds where dpkg-deb is missing (macOS, Fedora, a cluster without Debian tools).

A .deb is an `ar` archive whose member data.tar.{xz,gz,bz2} holds the installed files.
"""

import io
import tarfile
from pathlib import Path

AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60
DATA_MEMBERS = {"data.tar.xz": "xz", "data.tar.gz": "gz", "data.tar.bz2": "bz2",
                "data.tar": ""}


class DebError(Exception):
    pass


def ar_members(data, where):
    """(name, bytes) of each member of an ar archive."""
    if not data.startswith(AR_MAGIC):
        raise DebError(f"{where}: not a Debian package (no ar header)")
    pos = len(AR_MAGIC)
    while pos < len(data):
        header = data[pos:pos + AR_HEADER]
        if len(header) < AR_HEADER or header[58:60] != b"`\n":
            raise DebError(f"{where}: truncated or corrupt ar member header at byte {pos}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"{where}: member {name!r}: bad size field")
        start = pos + AR_HEADER
        if start + size > len(data):
            raise DebError(f"{where}: member {name!r} runs past the end of the file")
        yield name, data[start:start + size]
        pos = start + size + (size & 1)  # members are padded to an even offset


def deb_files(path, prefix):
    """{path relative to `prefix`: bytes} for the regular files under `prefix` (a path such as
    "usr/share/games/fortunes") in the package at `path`."""
    data = Path(path).read_bytes()
    prefix = prefix.strip("/") + "/"
    for name, member in ar_members(data, path):
        if name in DATA_MEMBERS:
            mode = "r:" + DATA_MEMBERS[name]
            files = {}
            try:
                with tarfile.open(fileobj=io.BytesIO(member), mode=mode) as tar:
                    for info in tar:
                        rel = info.name[2:] if info.name.startswith("./") else info.name
                        if info.isreg() and rel.startswith(prefix):
                            files[rel[len(prefix):]] = tar.extractfile(info).read()
            except (tarfile.TarError, EOFError, OSError) as e:
                raise DebError(f"{path}: {name}: {e}")
            return files
    raise DebError(f"{path}: no data.tar member compressed with xz, gz or bz2, or "
                   "uncompressed (the pinned packages use xz)")
