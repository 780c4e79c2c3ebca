"""Export fitted fastbp models to ONNX (``pip install "fastbp[onnx]"``).

``fastbp.onnx.to_onnx(model)`` returns an ``onnx.ModelProto`` for a fitted
``fastbp.MLP``, ``MLPClassifier`` or ``MLPRegressor``: input ``X``, outputs
``label`` and ``probabilities`` (classifiers) or ``variable`` (regressors), as
skl2onnx exports scikit-learn's MLPs with ``zipmap=False``. The tabular presets
(``TabularMLPClassifier``, ``TabularMLPRegressor``) export with their
preprocessing: one input per column of the table (as skl2onnx takes DataFrames),
or ``X`` for a preset fitted on a numeric matrix; ``tabular_inputs(model, X)``
builds that feed from a table.

Importing this module also registers fastbp's estimators with skl2onnx when it
is installed, so that a scikit-learn ``Pipeline`` holding one converts with
``skl2onnx.to_onnx(pipeline, X[:1])``.

See ``docs/onnx.md`` for serving with onnxruntime and what is supported.
"""

import importlib.util
import warnings

from ._export import to_onnx
from ._tabular import tabular_inputs

__all__ = ["to_onnx", "tabular_inputs"]


def _register_with_skl2onnx():
    if importlib.util.find_spec("skl2onnx") is None:
        return
    from . import _skl2onnx

    try:
        _skl2onnx.register()
    except ImportError as error:  # an installed but unusable skl2onnx
        warnings.warn(f"fastbp.onnx could not register its converters with skl2onnx "
                      f"({error}); pipelines holding fastbp estimators will not convert. "
                      "fastbp.onnx.to_onnx is not affected.", stacklevel=2)


_register_with_skl2onnx()
