"""File writes that readers never see half done."""

import os
import stat
import tempfile
from pathlib import Path


def atomic_write(path, write):
    """Write ``path`` through ``write(fh)`` on a temporary file, then rename it.

    The rename is atomic on POSIX and Windows, so ``path`` holds either its
    old content or the complete new one, even if the process dies mid-write;
    the temporary file is removed on failure.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); keep the permissions a plain
        # write would give: those of the file replaced, or the usual 0644.
        try:
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        except FileNotFoundError:
            os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
