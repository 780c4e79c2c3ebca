"""Type stubs for fastbp's epoch shuffle (``_shuffle.pyx``).

Checked against the compiled module by ``python -m mypy.stubtest
fastbp._shuffle`` (tests/test_stubs.py).
"""

import numpy as np
from numpy.typing import NDArray

def shuffle_inplace(a: NDArray[np.intp], random_state: np.random.RandomState) -> bool: ...

SIMD_LEVELS: tuple[str, ...]

def simd_level() -> str: ...
def cpu_simd_levels() -> tuple[str, ...]: ...
def build_simd_levels() -> tuple[str, ...]: ...
def set_simd_level(name: str) -> str: ...
