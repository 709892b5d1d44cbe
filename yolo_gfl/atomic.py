"""Files written whole or not at all: a temporary file beside the target, then one rename over it.

``write_atomic`` is the one way yolo_gfl writes a file that a reader or a resumed run may meet half-written: the zoo's
cell and record JSON, the benchmark records, the synthetic data set's YAML, and (through ``AtomicWritePath``) the
trainer's checkpoints. ``os.replace`` is atomic on POSIX and Windows, so the old file stays whole until the new one is.

Ultralytics' trainer saves ``last.pt`` (and ``best.pt``, ``epochN.pt``) with ``Path.write_bytes``, which truncates the
old file and then writes the new one: a process stopped in between (a killed session, a full disk) leaves a truncated
``last.pt``, and with it goes the training that ``resume=True`` would have continued. The trainer's paths are made
``AtomicWritePath`` instead, whose ``write_bytes`` is ``write_atomic``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["AtomicWritePath", "write_atomic"]


def write_atomic(path: str | Path, data: bytes | bytearray | memoryview | str) -> int:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file beside it; return the bytes written.

    The temporary name carries the process id and a random token, so concurrent writers never share one; after a
    failure (a full disk) it is removed and ``path`` is untouched."""
    path = Path(path)
    view = memoryview(data.encode() if isinstance(data, str) else data)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(view)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename, so a crash cannot leave a renamed but empty file
        os.replace(tmp, path)
    finally:
        if tmp.exists():  # the write failed: the target is untouched; drop the partial copy
            tmp.unlink()
    return view.nbytes


# The concrete class (PosixPath or WindowsPath): Path itself cannot be subclassed before Python 3.12.
class AtomicWritePath(type(Path())):
    """``Path`` whose ``write_bytes`` is ``write_atomic``; paths joined onto it (``wdir / "epoch3.pt"``) are the same."""

    def write_bytes(self, data) -> int:
        return write_atomic(self, data)
