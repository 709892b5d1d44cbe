"""``python -m yolo_gfl``: the same command line as ``yolo-gfl``."""

from .cli import entrypoint

entrypoint()
