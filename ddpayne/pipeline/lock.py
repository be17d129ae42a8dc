"""One run per output folder: a lock file that names its holder.

``ddpayne run`` creates ``<output dir>/ddpayne.lock`` (exclusively, so that of two runs started together
exactly one gets it) holding a small JSON document: the holder's ``pid``, ``host``, ``started`` (UTC, ISO
8601) and ``command``. A second run on the same folder stops with a message that names the holder. A lock
whose holder is gone is stale: on the same host a PID that no longer runs is recognised and the lock is
taken over (with a warning); a lock written on another host cannot be checked from here, and the message
says to delete the file once that run is known to have ended. The lock is removed when the run ends,
however it ends (short of SIGKILL, which leaves a stale lock for the next run to recover).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from ..exceptions import DDPayneError

log = logging.getLogger(__name__)

#: Name of the lock file in the output folder.
LOCK_NAME = "ddpayne.lock"


class OutputLockedError(DDPayneError):
    """Another run holds the output folder; the message names it and what to do."""


def _pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, owned by someone else
        return True
    return True


class RunLock:
    """The lock of one output folder, used as a context manager.

    Parameters
    ----------
    folder : path-like
        The output folder (must exist).
    command : str, optional
        Recorded in the lock (default: the command line).
    """

    def __init__(self, folder: str | os.PathLike, command: str | None = None):
        self.path = Path(folder) / LOCK_NAME
        self.command = command if command is not None else " ".join(sys.argv)
        self._held = False

    def holder(self) -> dict | None:
        """What the lock file says of its holder (None when there is no readable lock)."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        """Take the lock.

        Raises
        ------
        OutputLockedError
            If a live run (or a run on another host) holds it.
        """
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": self.command}
        for _ in range(3):   # a stale lock removed by us may be retaken by another run in between
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._check_stale()
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self._held = True
            return
        raise OutputLockedError(f"{self.path}: could not take the lock of the output folder")

    def _check_stale(self) -> None:
        """Remove the existing lock if its holder is gone, else raise :class:`OutputLockedError`."""
        info = self.holder()
        if info is None:   # being written this instant, or garbage: garbage older than a minute is stale
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return
            if age < 60:
                time.sleep(0.2)
                info = self.holder()
                if info is None:
                    raise OutputLockedError(f"{self.path} exists but is unreadable: if no ddpayne run uses "
                                            f"{self.path.parent}, delete it and run again")
            else:
                log.warning("%s: unreadable lock file older than a minute: taken over", self.path)
                self.path.unlink(missing_ok=True)
                return
        pid, host = int(info.get("pid", -1)), str(info.get("host", "?"))
        who = f"PID {pid} on host {host}, started {info.get('started', '?')}"
        if host == socket.gethostname():
            if pid == os.getpid():
                raise OutputLockedError(f"{self.path.parent} is already locked by this process ({who})")
            if _pid_alive(pid):
                raise OutputLockedError(
                    f"{self.path.parent} is in use by another ddpayne run ({who}: {info.get('command', '')}):"
                    " wait for it to finish, or give this run another [output] dir")
            log.warning("%s: stale lock of a run that no longer runs (%s): taken over", self.path, who)
            self.path.unlink(missing_ok=True)
            return
        raise OutputLockedError(
            f"{self.path.parent} is locked by a ddpayne run on another host ({who}): wait for it to finish, "
            f"or give this run another [output] dir; if that run has ended, delete {self.path} and run again")

    def release(self) -> None:
        """Remove the lock (if this object holds it)."""
        if self._held:
            info = self.holder()
            if info is None or int(info.get("pid", -1)) == os.getpid():
                self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
