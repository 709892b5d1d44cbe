"""Files written whole or not at all: a temporary file beside the target, then one rename over it.

``write_atomic`` is the one way yolo_gfl writes a file that a reader or a resumed run may meet half-written: the zoo's
cell and record JSON, the benchmark records, the synthetic data set's YAML, and (through ``AtomicWritePath``) the
trainer's checkpoints. ``os.replace`` is atomic on POSIX and Windows, so the old file stays whole until the new one is.

Ultralytics' trainer saves ``last.pt`` (and ``best.pt``, ``epochN.pt``) with ``Path.write_bytes``, which truncates the
old file and then writes the new one: a process stopped in between (a killed session, a full disk) leaves a truncated
``last.pt``, and with it goes the training that ``resume=True`` would have continued. The trainer's paths are made
``AtomicWritePath`` instead, whose ``write_bytes`` is ``write_atomic``.

A process killed mid-write cannot remove its temporary file; ``remove_stale_temps`` does, for a trainer that starts or
resumes in that folder (a yolov8x checkpoint's copy is a few hundred MB).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

__all__ = ["AtomicWritePath", "remove_stale_temps", "write_atomic"]

# write_atomic's temporary name: ".<target name>.<pid>-<8 hex digits>.tmp"
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
# Windows' os.kill terminates the process whatever the signal, so no process is asked after there
_CAN_PROBE_PROCESSES = os.name != "nt"


def write_atomic(path: str | Path, data: bytes | bytearray | memoryview | str) -> int:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file beside it; return the bytes written.

    The temporary name carries the process id and a random token, so concurrent writers never share one; after a
    failure (a full disk) it is removed and ``path`` is untouched."""
    path = Path(path)
    view = memoryview(data.encode() if isinstance(data, str) else data)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")  # the form _TEMP_NAME reads
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


def _process_alive(pid: int) -> bool:
    if not _CAN_PROBE_PROCESSES:
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but is another user's, or the platform cannot tell: keep its file
    return True


def remove_stale_temps(folder: str | Path, min_age_s: float = 600.0) -> list[Path]:
    """Remove the temporary files that ``write_atomic`` calls in ``folder`` left behind; return the paths removed.

    A temporary file is stale when the process named in it no longer runs here and it has not changed for
    ``min_age_s`` seconds: both, so that neither a live writer on this machine nor one on another machine sharing the
    folder (whose pid means nothing here) loses the file it is writing. Nothing else in the folder is touched."""
    folder, removed = Path(folder), []
    if not folder.is_dir():
        return removed
    now = time.time()
    for p in folder.iterdir():
        m = _TEMP_NAME.match(p.name)
        if not m or not p.is_file() or _process_alive(int(m["pid"])):
            continue
        try:
            if now - p.stat().st_mtime >= min_age_s:
                p.unlink()
                removed.append(p)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            pass
    return removed


# The concrete class (PosixPath or WindowsPath): Path itself cannot be subclassed before Python 3.12.
class AtomicWritePath(type(Path())):
    """``Path`` whose ``write_bytes`` is ``write_atomic``; paths joined onto it (``wdir / "epoch3.pt"``) are the same."""

    def write_bytes(self, data) -> int:
        return write_atomic(self, data)
