"""Shared test set-up: one BLAS thread, as the app and the command line use."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.blas import set_blas_threads  # noqa: E402

set_blas_threads(1)
