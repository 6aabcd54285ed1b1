"""The SQLite writers' turn as another process takes it, for tests of ``models.db._FileTurn``."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from models.db import WRITERS_SUFFIX


def other_process_turn(database: Path | str) -> int:
    """Take the writers' turn of ``database`` as another process would, and return the
    descriptor that holds it (closing it ends the turn): an ``flock`` on an open file
    description of its own, which excludes this process's as another process's would."""
    fd = os.open(f"{database}{WRITERS_SUFFIX}", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd
