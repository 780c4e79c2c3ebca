"""The environment for a test's Python subprocess: this fastbp first on the path,
the caller's PYTHONPATH kept after it (where the test dependencies may live, as
under tools/aarch64_qemu.sh)."""

import os
from pathlib import Path

import fastbp


def package_env(**extra):
    """``os.environ`` with fastbp's parent directory first on PYTHONPATH, plus ``extra``."""
    paths = [str(Path(fastbp.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **extra}
