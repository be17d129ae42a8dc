"""Atomic file writes: write to a temporary file in the same folder, then rename into place."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..exceptions import DDPayneError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    A crash or exception leaves ``path`` untouched (the old file, or none) and removes the temporary.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes),
                               dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class WorkdirLocked(DDPayneError):
    """Another live process holds the lock of a working folder."""


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike, name: str = ".lock") -> Iterator[int]:
    """Hold an exclusive lock on ``workdir`` so that two runs never work in one folder at once.

    The lock is an advisory ``flock`` on ``<workdir>/<name>``: the operating system drops it when its
    process ends, however it ends, so a killed run never leaves a stale lock behind and the next run
    resumes at once. The file records the holder's pid and host for the error message.

    Yields the lock's file descriptor: a process forked while the lock is held shares it, so a child that
    could outlive its parent (a pool worker) must ``os.close`` it, or it keeps the folder locked.

    Raises
    ------
    WorkdirLocked
        If another process holds the lock.
    """
    import fcntl
    import socket

    path = Path(workdir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise WorkdirLocked(f"{workdir} is in use by {holder} (lock {path}); wait for it to finish "
                                f"or stop it before starting another run there") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        yield fh.fileno()
    finally:
        fh.close()
