"""Type stubs for fastbp's compiled core (``_engine.pyx``).

Every array argument is float32 or float64 throughout one call (Cython's
``floating`` fused type picks the engine); the TypeVar ``_F`` says so.
Checked against the compiled module by ``python -m mypy.stubtest
fastbp._engine`` (tests/test_stubs.py).
"""

from collections.abc import Iterable
from typing import Any, TypeVar, final

import numpy as np
from numpy.typing import NDArray
from typing_extensions import Self, disjoint_base

_F = TypeVar("_F", np.float32, np.float64)

ACTIVATION_CODES: dict[str, int]
HIDDEN_ACTIVATIONS: tuple[str, ...]
DEFAULT_CHUNK_ROWS: int
PHASE_NAMES: tuple[str, ...]
SIMD_LEVELS: tuple[str, ...]

@disjoint_base
class ThreadTuner:
    """Chooses one thread or the allowed maximum for each epoch segment by
    measured time per sample."""

    def __new__(cls) -> Self: ...
    @property
    def ns_per_sample(self) -> tuple[float, float]: ...
    @property
    def measured(self) -> tuple[int, int]: ...
    def record(self, threads: int, ns_per_sample: float) -> None: ...

@disjoint_base
class NetSpec:
    """Shape and activations of a network, and where each layer lives in the
    flat parameter buffer."""

    def __new__(
        cls, sizes: Iterable[int], hidden_activation: str, output_activation: str
    ) -> Self: ...
    @property
    def sizes(self) -> tuple[int, ...]: ...
    @property
    def hidden_activation(self) -> str: ...
    @property
    def output_activation(self) -> str: ...
    @property
    def n_params(self) -> int: ...
    @property
    def n_layers(self) -> int: ...
    def weight_slices(self) -> list[tuple[int, int, tuple[int, int]]]: ...
    def bias_slices(self) -> list[tuple[int, int]]: ...
    def train_workspace_size(self, batch_size: int, gather_rows: bool) -> int: ...
    def predict_workspace_size(self, chunk_rows: int) -> int: ...
    @property
    def thread_tuner(self) -> ThreadTuner: ...
    predictor: Predictor | None
    def __reduce__(self) -> tuple[type[NetSpec], tuple[tuple[int, ...], str, str]]: ...

@final
class InputMatrix:
    """Rows for the engine: a dense C-contiguous float array or a CSR matrix."""

    def __new__(cls, matrix: Any) -> Self: ...
    @property
    def n_rows(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def is_sparse(self) -> bool: ...
    @property
    def matrix(self) -> Any: ...
    def __reduce__(self) -> tuple[type[InputMatrix], tuple[Any]]: ...

@final
class OptimizerRecord:
    """An optimizer's settings and step count as ``train_epoch`` reads them."""

    def __new__(cls, kind: str, learning_rate: float, momentum: float = 0.0,
                beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                t: int = 0) -> Self: ...
    @property
    def kind(self) -> str: ...
    learning_rate: float
    t: int
    def __reduce__(self) -> tuple[type[OptimizerRecord], tuple[Any, ...]]: ...

@disjoint_base
class Predictor:
    """``predict`` for small dense inputs, without the general validation."""

    def __new__(cls, spec: NetSpec, params: NDArray[Any], coefs: Iterable[NDArray[Any]],
                intercepts: Iterable[NDArray[Any]], classes: NDArray[Any] | None, kind: str,
                max_rows: int = 64) -> Self: ...
    @property
    def max_rows(self) -> int: ...
    def predict(self, X: Any, coefs: Any, intercepts: Any,
                classes: NDArray[Any] | None) -> NDArray[Any] | None: ...
    def predict_proba(self, X: Any, coefs: Any, intercepts: Any, classes: NDArray[Any] | None,
                      log: bool = False) -> NDArray[Any] | None: ...

@disjoint_base
class _BlasSerial:
    def __new__(cls) -> Self: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool: ...

def _find_scipy_openblas() -> str | None: ...
def blas_threads() -> int: ...
def epoch_threads(spec: NetSpec, batch_size: int) -> int: ...
def data_parallel(spec: NetSpec, batch_size: int) -> bool: ...
def set_data_parallel_ratio(ratio: float) -> float: ...
def set_segment_work(work: float) -> float: ...
def set_block_sizes(row_target: int, weight_blocks: int) -> tuple[int, int]: ...
def simd_level() -> str: ...
def cpu_simd_levels() -> tuple[str, ...]: ...
def set_simd_level(name: str) -> str: ...
def set_profiling(enable: bool) -> bool: ...
def phase_times(reset: bool = False) -> dict[str, Any]: ...
def all_finite(values: NDArray[_F]) -> bool: ...
def matmul(
    A: NDArray[_F],
    B: NDArray[_F],
    C: NDArray[_F],
    trans_a: bool = False,
    path: str = "auto",
    repeat: int = 1,
) -> None: ...

def train_epoch(
    spec: NetSpec,
    params: NDArray[_F],
    grads: NDArray[_F],
    state1: NDArray[_F],
    state2: NDArray[_F],
    X: InputMatrix,
    Y: NDArray[_F],
    sample_weight: NDArray[_F] | None,
    order: NDArray[np.intp] | None,
    batch_size: int,
    optimizer: OptimizerRecord,
    alpha: float,
    loss_scale: float,
    work: NDArray[_F],
    n_threads: int = 0,
) -> float: ...
def loss_and_grad(
    spec: NetSpec,
    params: NDArray[_F],
    X: InputMatrix,
    Y: NDArray[_F],
    sample_weight: NDArray[_F] | None,
    alpha: float,
    loss_scale: float,
    grad_out: NDArray[_F],
    work: NDArray[_F],
    chunk_rows: int,
    n_threads: int = 0,
) -> float: ...
def forward(
    spec: NetSpec,
    params: NDArray[_F],
    X: InputMatrix,
    out: NDArray[_F],
    work: NDArray[_F],
    chunk_rows: int,
    n_threads: int = 0,
) -> None: ...
def apply_activation(Z: NDArray[_F], name: str) -> None: ...
def apply_activation_derivative(D: NDArray[_F], A: NDArray[_F], name: str) -> None: ...
