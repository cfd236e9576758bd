"""The one way out and the one way in for files a user names.

`write_atomic`: every output (run files, knowledge files, caches, reports, `--out`) goes through
a unique temporary sibling and a rename, so a reader never sees half a file; it never replaces
what is not a regular file (a device, a FIFO, a socket, a directory, a link to one), and an error
names the user's path, never the temporary one.

`read_text`: every user-named input (`--labels @`, `--sample`, `--schema`, `--knowledge FILE`,
records, manifests) is a regular file, outside /proc, /sys and /dev, under a size cap, UTF-8,
with no NUL or other control character except tabs and line breaks.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import unicodedata
from pathlib import Path

from offline_vision.errors import BadInput

MAX_INPUT_BYTES = 64 * 2**20  # a label list, a sample or a schema is far smaller
_SYSTEM = ("/proc", "/sys", "/dev")


def check_output(path: Path) -> Path:
    """`path` fit to be written: not empty, and not an existing non-regular file."""
    path = Path(path)
    if not str(path) or not path.name or str(path) in (".", ".."):
        raise BadInput("an output path must name a file")
    try:
        st = os.stat(path)  # follows a link: a link to a device is a device
    except FileNotFoundError:
        return path
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{path}: exists and is not a regular file; refusing to replace it")
    return path


@contextlib.contextmanager
def replacing(path: Path):
    """Yields a unique temporary sibling of `path` to write; renamed over `path` when the block
    ends well, removed when it does not. OS errors name `path`, never the temporary file."""
    path = check_output(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write `text` to `path` through a unique temporary sibling and a rename."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def open_output(path: Path, mode: str = "ab", **kwargs):
    """A file written in place (records appended, a download resumed, a file assembled): never
    through a symbolic link (O_NOFOLLOW), never over a FIFO, device or directory. `mode` is
    "a"/"ab" (append), "w"/"wb" (new or emptied) or "x"/"xb" (new only)."""
    path = check_output(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    flags |= {"a": os.O_APPEND, "w": os.O_TRUNC, "x": os.O_EXCL}[mode[0]]
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        why = "is a symbolic link; not written through" if e.errno == errno.ELOOP else e.strerror
        raise OSError(e.errno, why, str(path)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadInput(f"{path}: exists and is not a regular file; refusing to write it")
    os.set_blocking(fd, True)
    return os.fdopen(fd, mode, **kwargs)


def _system_path(path: Path) -> bool:
    real = os.path.realpath(path)
    return any(real == p or real.startswith(p + "/") for p in _SYSTEM)


def read_bytes(path: Path, *, what: str, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a user-named regular file (never a device, FIFO or /proc entry)."""
    path = Path(path)
    if _system_path(path):
        raise BadInput(f"{what} {path}: not a regular file (system paths are not read)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    except OSError as e:
        raise BadInput(f"cannot read {what} {path}: {e.strerror}") from None
    st = os.fstat(fd)  # the file opened, not the one a stat before it saw
    if not stat.S_ISREG(st.st_mode):  # checked before reading: a directory's error named the fd
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise BadInput(f"{what} {path}: {kind}")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > max_bytes:
            raise BadInput(f"{what} {path}: {st.st_size} bytes, over the {max_bytes}-byte limit")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BadInput(f"{what} {path}: over the {max_bytes}-byte limit")
    return data


def read_text(path: Path, *, what: str, max_bytes: int = MAX_INPUT_BYTES) -> str:
    """A user-named text file: `read_bytes`, UTF-8, no control characters but tab and newline."""
    data = read_bytes(path, what=what, max_bytes=max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"{what} {path}: not UTF-8 text (byte {e.start})") from None
    bad = next((ch for ch in text if is_control(ch) and ch not in "\t\n\r"), None)
    if bad is not None:
        line = text.count("\n", 0, text.index(bad)) + 1
        raise BadInput(f"{what} {path}: line {line} holds the control character {bad!r}")
    return text


def is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc"


def shown(text: str) -> str:
    """`text` fit for a terminal line: control characters escaped (a newline cannot forge an
    output line, an ESC cannot drive the terminal)."""
    if not any(is_control(ch) for ch in text):
        return text
    return "".join(repr(ch)[1:-1] if is_control(ch) else ch for ch in text)
