"""``python -m yolo_gfl.zoo --cell <spec.json>``: one zoo cell in its own process (started by ``run_zoo``)."""

import sys

from .cell import cell_entry

sys.exit(cell_entry())
