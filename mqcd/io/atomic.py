"""Crash-safe HDF5 files: built in memory, written with plain os calls, renamed into place.

:func:`write_h5` builds the file in memory (h5py's ``core`` driver without a backing store),
writes its image to a temporary file in the target's folder, fsyncs it and renames it over the
target (``os.replace``, atomic on POSIX), then fsyncs the folder. A crash or ``kill -9`` at any
moment leaves the old file or the new one, never a partial one. A full disk, a quota or a
read-only folder is an ordinary ``OSError`` raised by ``os.write``/``os.open`` before the rename:
nothing happens inside the HDF5 library, which, when a write fails under it, can be left in a
state that crashes the interpreter when the file object is freed (exit 139 with a full disk).

New files get the usual permissions (``0666`` minus the umask, i.e. 0644 for umask 022), unlike
``tempfile.mkstemp`` (0600).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import h5py


def temp_name(path) -> Path:
    """A fresh temporary name next to ``path`` (pid and random suffix)."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def h5_image(fill, name="image.h5") -> bytes:
    """Bytes of an HDF5 file built in memory by ``fill(h5py.File)``."""
    with h5py.File(name, "w", driver="core", backing_store=False, block_size=1 << 20) as f:
        fill(f)
        f.flush()
        return f.id.get_file_image()


def fsync_dir(folder):
    try:                                    # make a rename durable (not possible everywhere)
        fd = os.open(folder if str(folder) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path, data: bytes, tmp=None):
    """Write ``data`` to ``path`` atomically through the temporary file ``tmp``."""
    path = Path(path)
    tmp = Path(tmp) if tmp is not None else temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return path


def write_h5(path, fill, tmp=None):
    """Build an HDF5 file with ``fill(f)`` in memory and write it atomically to ``path``."""
    tmp = Path(tmp) if tmp is not None else temp_name(path)
    return write_bytes(path, h5_image(fill, str(tmp)), tmp)


def probe_folder(path, what="output"):
    """Check now that a file can be created next to ``path`` (creates and removes a temporary
    file there); raises OSError with a message naming ``path``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, f"{what} {path} is a directory; give a file name (-o / [output] "
                                "file)")
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(2, f"{what} directory {folder} does not exist")
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot create files in {folder} for the {what} {path.name} "
                        f"({exc.strerror}); choose another location (-o / [output] file)") from None
    os.close(fd)
    os.unlink(tmp)
