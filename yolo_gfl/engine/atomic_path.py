"""A path whose ``write_bytes`` replaces the file in one step, for the trainer's checkpoints.

Ultralytics' trainer saves ``last.pt`` (and ``best.pt``, ``epochN.pt``) with ``Path.write_bytes``, which truncates the
old file and then writes the new one: a process stopped in between (a killed session, a full disk) leaves a truncated
``last.pt``, and with it goes the training that ``resume=True`` would have continued. The trainer's paths are made
``AtomicWritePath`` instead, whose ``write_bytes`` writes a temporary file beside the target and renames it over the
target (``os.replace``, atomic on POSIX and Windows): the old checkpoint stays whole until the new one is.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["AtomicWritePath"]


# The concrete class (PosixPath or WindowsPath): Path itself cannot be subclassed before Python 3.12.
class AtomicWritePath(type(Path())):
    """``Path`` with an all-or-nothing ``write_bytes``; paths joined onto it (``wdir / "epoch3.pt"``) are the same."""

    def write_bytes(self, data) -> int:
        data = memoryview(data)
        tmp = self.with_name(f".{self.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # on disk before the rename, so a crash cannot leave a renamed but empty file
            os.replace(tmp, self)
        finally:
            if tmp.exists():  # the write failed: the target is untouched; drop the partial copy
                tmp.unlink()
        return data.nbytes
