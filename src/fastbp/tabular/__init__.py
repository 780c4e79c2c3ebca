"""fastbp's tabular preset: MLPs that take a table as it comes.

:class:`TabularMLPClassifier` and :class:`TabularMLPRegressor` fit numpy
arrays, scipy.sparse matrices and pandas or polars DataFrames with numeric,
bool, categorical / text, datetime columns and missing values, through the
preprocessing built in (:class:`TabularPreprocessor`, also usable on its
own); :class:`TabularPipeline` puts that preprocessing in front of one
MLP with its own settings. See docs/tabular.md for what happens to each kind of column.

pandas and polars are imported only when a DataFrame of theirs is passed.
"""

from ._estimators import TabularMLPClassifier, TabularMLPRegressor
from ._pipeline import TabularPipeline
from ._preprocessor import TabularPreprocessor

__all__ = ["TabularMLPClassifier", "TabularMLPRegressor", "TabularPipeline",
           "TabularPreprocessor"]
