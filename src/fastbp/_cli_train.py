"""``fastbp train`` and ``fastbp predict``: a data file in, a model file (or
predictions as CSV) out.

train: read the file (``_cli_data``; a CSV for the default model into
compact columns in row blocks, ``_cli_columns``) -> split off the target,
guess the task and say why -> the model: by default the tabular
preprocessing (TabularPreprocessor) in front of one MLP with the command's
settings (saved together as a TabularPipeline), ``--preset tabular`` the
tabular preset, ``--no-preprocessing`` the bare MLP on numeric columns ->
fit (the rows are let go before the network trains; row blocks as soon as
their rows of the matrix are written) -> save.

predict: load the model -> the file's columns matched by name (any order;
extra ones ignored with a note; a missing one a one-line error) or by
position -> labels in their original form, probabilities per class.
"""

import csv
import functools
import importlib.util
import os
import sys
import time
import warnings
import zipfile

import numpy as np

from ._cli_data import CLIError, guess_task, one_line, read_table, target_values

__all__ = ["cmd_train", "cmd_predict", "load_model", "read_data", "prediction_input",
           "one_line"]

PROG = "fastbp"
# the command's MLP settings when an option is not given (the preset has its own)
MLP_DEFAULTS = {"hidden": (100,), "activation": "relu", "solver": "adam", "epochs": 200,
                "batch_size": "auto", "learning_rate": 0.001, "alpha": 0.0001,
                "validation_fraction": 0.1, "n_iter_no_change": 10, "dtype": "float64"}
# option -> the preset's parameter (options the preset does not take are refused)
_PRESET_OPTIONS = {"hidden": "hidden_layer_sizes", "activation": "activation",
                   "epochs": "max_iter", "batch_size": "batch_size",
                   "learning_rate": "learning_rate_init", "alpha": "alpha",
                   "validation_fraction": "validation_fraction",
                   "n_iter_no_change": "n_iter_no_change", "ensemble": "n_ensemble",
                   "dtype": "dtype", "random_state": "random_state"}
_MLP_ONLY = ("solver", "loss", "early_stopping")


def _format(value):
    # numpy's str() is the shortest text that reads back to the same value
    # in the value's own dtype (float32 or float64)
    return str(value)


class _EpochLines:
    """A progress line per epoch: ``epoch  12/200  loss 0.123456 ...``."""

    def __init__(self, total, stream):
        self.total = total
        self.stream = stream
        self.width = len(str(total))

    def __call__(self, info):
        line = f"epoch {info.epoch:>{self.width}}/{self.total}  loss {info.loss:.6f}"
        if info.validation_score is not None:
            line += f"  validation score {info.validation_score:.4f}"
        print(line, file=self.stream, flush=True)


def _have_tqdm():
    return importlib.util.find_spec("tqdm") is not None


def _progress_reporting(model, mode, total, stream):
    """Show progress while ``model`` trains: ``'bar'`` (tqdm, on stderr) or
    ``'lines'`` (one line per epoch on ``stream``); ``'auto'`` draws the bar
    when tqdm is installed and stderr is a terminal."""
    if mode == "auto":
        mode = "bar" if _have_tqdm() and sys.stderr.isatty() else "lines"
    if mode == "bar":
        if not _have_tqdm():
            raise CLIError("--progress bar needs tqdm: pip install tqdm")
        from .callbacks import ProgressBar

        model.set_params(callbacks=[ProgressBar(desc="training", file=sys.stderr)])
    else:
        model.set_params(callbacks=[_EpochLines(total, stream)])


def _write_csv(path, header, rows):
    if path is None or path == "-":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.flush()
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)



# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

def read_data(args, path, numbers_first=False, arrow_csv_reader=None):
    """The data file ``path`` read with the command's data options."""
    return read_table(path, header=args.header, delimiter=args.delimiter,
                      encoding=args.encoding,
                      question_mark_missing=args.missing_question_mark,
                      numbers_first=numbers_first, arrow_csv_reader=arrow_csv_reader)


def _training_reader(args):
    """How ``train`` reads a CSV for the default preprocessing: into compact
    columns in row blocks, numbers in the training dtype (``_cli_columns``)."""
    if args.preset == "tabular" or args.no_preprocessing:
        return None
    from ._cli_columns import read_csv_columns

    return functools.partial(read_csv_columns, dtype=args.dtype or MLP_DEFAULTS["dtype"],
                             target=args.target, drop=args.drop)


def _positional(table, indices):
    """The columns as an array (a file without a header: columns by position)."""
    columns = table.columns(indices)
    return columns.to_numpy() if hasattr(columns, "to_numpy") else columns


def target_column(table, target):
    """``(y, target name, its column index or None)``: the target column
    (the last one by default), or an .npz archive's y."""
    if table.y is not None:
        if target is not None:
            raise CLIError(f"{table.path}: holds arrays X and y; --target applies to CSV, "
                           "Parquet and .npy files only")
        return table.y, "y", None
    if table.n_columns < 2:
        raise CLIError(f"{table.path}: needs at least two columns (features and the target)")
    index = table.column_index(target if target is not None else "-1")
    return table.column(index), table.column_name(index), index


def feature_names(table, target_index, dropped=()):
    """The feature columns' names (None for a file without a header)."""
    if table.names is None:
        return None
    left_out = {target_index} | {table.column_index(name) for name in dropped}
    return [name for j, name in enumerate(table.names) if j not in left_out]


def feature_columns(table, target_index, dropped=()):
    """The features (every column but the target and the ``dropped`` ones):
    a DataFrame (named columns) or an array (by position)."""
    left_out = {target_index} | {table.column_index(name) for name in dropped}
    features = [j for j in range(table.n_columns) if j not in left_out]
    if not features:
        raise CLIError(f"{table.path}: no feature column is left once the target and the "
                       "--drop columns are set aside")
    if table.names is None or table.frame is None:
        return _positional(table, features)
    return table.columns(features)


def numeric_matrix(features, path, dtype):
    """The features as a float array (``--no-preprocessing`` and models
    saved without preprocessing): every column must hold numbers."""
    if hasattr(features, "dtypes"):
        for name, column_dtype in zip(features.columns, features.dtypes):
            if getattr(column_dtype, "kind", "O") not in "biuf":
                sample = features[name].dropna()
                shown = f" such as {str(sample.iloc[0])!r}" if len(sample) else ""
                raise CLIError(f"{path}: column {name!r} holds text{shown}; a model without "
                               "preprocessing reads numbers only (train without "
                               "--no-preprocessing to encode it)")
        return features.to_numpy(dtype=dtype, na_value=np.nan)
    try:
        return np.asarray(features, dtype=dtype)
    except (TypeError, ValueError):
        raise CLIError(f"{path}: a model without preprocessing reads numbers only") from None


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------

def _task(args, y, target_name):
    """(task, the line saying which and why)."""
    if args.task != "auto":
        task, reason = args.task, "chosen with --task"
    else:
        task, reason = guess_task(y, target_name)
    other = "regress" if task == "classify" else "classify"
    name = "classification" if task == "classify" else "regression"
    return task, f"task: {name} ({reason}; --task {other} to override)"


def _regression_target(y, path):
    if y.dtype.kind not in "biuf":
        raise CLIError(f"{path}: --task regress needs a numeric target, but the target column "
                       f"holds text such as {str(y.ravel()[0])!r}")
    return y.astype(np.float64)


def _given(args, name):
    return getattr(args, name, None) not in (None, False)


def _mlp(args, task):
    """The MLP of the command's settings (defaults: MLP_DEFAULTS)."""
    from . import MLP

    def option(name):
        value = getattr(args, name)
        return MLP_DEFAULTS[name] if value is None else value

    loss = "log_loss" if task == "classify" else (args.loss or "squared_error")
    return MLP(hidden_layer_sizes=option("hidden"), activation=option("activation"),
               loss=loss, solver=option("solver"), alpha=option("alpha"),
               batch_size=option("batch_size"), learning_rate_init=option("learning_rate"),
               max_iter=option("epochs"), random_state=args.random_state,
               early_stopping=args.early_stopping,
               validation_fraction=option("validation_fraction"),
               n_iter_no_change=option("n_iter_no_change"))


def _preset(args, task):
    from .tabular import TabularMLPClassifier, TabularMLPRegressor

    for name in _MLP_ONLY:
        if _given(args, name):
            raise CLIError(f"--{name.replace('_', '-')} does not apply to --preset tabular "
                           "(it trains with Adam, squared error for regression, and keeps "
                           "its best epoch on held-out rows)")
    if args.batch_size == "auto":
        raise CLIError("--batch-size auto does not apply to --preset tabular; give a number")
    params = {param: getattr(args, option) for option, param in _PRESET_OPTIONS.items()
              if getattr(args, option) is not None}
    cls = TabularMLPClassifier if task == "classify" else TabularMLPRegressor
    return cls(**params)


def _model_settings(args, task):
    """``(what is fitted, what progress is reported on)``."""
    if args.preset == "tabular":
        model = _preset(args, task)
        return model, model
    if args.ensemble is not None:
        raise CLIError("--ensemble applies to --preset tabular only")
    mlp = _mlp(args, task)
    return mlp, mlp


def _describe_features(preprocessor, n_rows):
    kinds = {}
    for kind in preprocessor.column_kinds_:
        kinds[kind] = kinds.get(kind, 0) + 1
    shown = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    return (f"{n_rows:,} rows, {preprocessor.n_features_in_} feature columns ({shown}) -> "
            f"{preprocessor.n_features_out_} network inputs")


def _fit(model, X, y):
    """Fit, turning the estimator's errors into one-line errors; returns the
    warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, y)
        except (ValueError, TypeError) as exc:
            raise CLIError(one_line(exc)) from None
    return caught


def _fit_with_preprocessing(args, mlp, table, target_index, y, out):
    """The preprocessing fitted and applied once, the rows let go, the MLP
    trained on the matrix: a TabularPipeline of the two."""
    from .tabular import TabularPipeline, TabularPreprocessor

    pipeline = TabularPipeline(mlp, TabularPreprocessor(dtype=args.dtype or
                                                        MLP_DEFAULTS["dtype"]))
    preprocessor = TabularPreprocessor(**pipeline.preprocessor.get_params())
    names = feature_names(table, target_index, args.drop)
    try:
        # the feature columns are referenced by this call only: dropped with the table
        features = feature_columns(table, target_index, args.drop)
        if hasattr(features, "pop_blocks"):  # read in blocks (_cli_columns)
            preprocessor.fit(features)
            table.drop_frame()
            matrix = transform_blocks(preprocessor, features)
        else:
            matrix = preprocessor.fit_transform(features)
        del features
    except (ValueError, TypeError) as exc:
        raise CLIError(one_line(exc)) from None
    if names is not None and not hasattr(preprocessor, "feature_names_in_"):
        # read without pandas (an array): as if fitted on a DataFrame, so that predict
        # picks the columns by name
        preprocessor.feature_names_in_ = np.asarray(names, dtype=object)
    if out is not None:
        print(_describe_features(preprocessor, matrix.shape[0]), file=out)
    table.drop_frame()  # the network trains on the matrix alone
    caught = _fit(_Deferred(pipeline, preprocessor, matrix), None, y)
    return pipeline, matrix, caught


def transform_blocks(preprocessor, blocks):
    """``preprocessor.transform`` of a BlockTable, block by block, each block
    let go once its rows are written: the table and the output are held
    together one block at a time (dense output: written into the matrix
    made at the start, whose pages the system provides as they are written;
    CSR output: the blocks' parts joined at the end)."""
    import scipy.sparse as sp

    dtype = np.dtype(preprocessor.dtype)
    if preprocessor.sparse_output_:
        parts = [preprocessor.transform(block) for block in blocks.pop_blocks()]
        return _stacked_csr(parts, preprocessor.n_features_out_, dtype, sp)
    matrix = np.empty((blocks.n_rows, preprocessor.n_features_out_), dtype=dtype)
    start = 0
    for block in blocks.pop_blocks():
        matrix[start:start + block.n_rows] = preprocessor.transform(block)
        start += block.n_rows
    return matrix


def _stacked_csr(parts, n_columns, dtype, sp):
    """The CSR matrices ``parts`` one below the other (as one transform
    would have made them: intp indices, sorted)."""
    indptr = [np.zeros(1, dtype=np.intp)]
    offset = 0
    for part in parts:
        indptr.append(part.indptr[1:].astype(np.intp) + offset)
        offset += part.indptr[-1]
    data = np.concatenate([part.data for part in parts] or [np.empty(0, dtype=dtype)])
    indices = np.concatenate([part.indices.astype(np.intp) for part in parts]
                             or [np.empty(0, dtype=np.intp)])
    n_rows = sum(part.shape[0] for part in parts)
    out = sp.csr_matrix((data, indices, np.concatenate(indptr)), shape=(n_rows, n_columns))
    out.has_sorted_indices = True
    return out


class _Deferred:
    """``fit(None, y)`` runs ``pipeline.fit_transformed`` on the matrix (so
    that ``_fit`` reports its warnings and errors as for the other models)."""

    def __init__(self, pipeline, preprocessor, matrix):
        self.pipeline, self.preprocessor, self.matrix = pipeline, preprocessor, matrix

    def fit(self, _, y):
        self.pipeline.fit_transformed(self.preprocessor, self.matrix, y)


def _summary(model, seconds, score, task):
    mlp = getattr(model, "mlp_", model)
    metric = "accuracy" if task == "classify" else "R^2"
    if hasattr(model, "estimators_"):
        epochs = ", ".join(str(e) for e in model.best_epochs_)
        return (f"trained {len(model.estimators_)} network(s) in {seconds:.2f} s, best "
                f"held-out epoch(s) {epochs}, training {metric} {score:.4f}")
    sizes = "-".join(str(n) for n in [c.shape[0] for c in mlp.coefs_]
                     + [mlp.coefs_[-1].shape[1]])
    unit = "iterations" if mlp.solver == "lbfgs" else "epochs"
    line = (f"trained {sizes} in {seconds:.2f} s ({mlp.n_iter_} {unit}), loss "
            f"{mlp.loss_:.6f}, training {metric} {score:.4f}")
    if getattr(mlp, "best_validation_score_", None) is not None:
        line += f", best validation {metric} {mlp.best_validation_score_:.4f}"
    return line


def cmd_train(args):
    if args.no_preprocessing and args.preset == "tabular":
        raise CLIError("--no-preprocessing does not apply to --preset tabular (its "
                       "preprocessing is part of the recipe)")
    table = read_data(args, args.data, arrow_csv_reader=_training_reader(args))
    y, target_name, target_index = target_column(table, args.target)
    y = target_values(y, target_name, args.data)
    task, task_line = _task(args, y, target_name)
    out = None if args.quiet else sys.stdout
    if out is not None:
        print(task_line, file=out)
    if task == "regress":
        if y.dtype.kind in "iu" and y.min() >= 0 and args.loss is None and out is not None:
            print(f"note: {target_name} holds non-negative integers: if they are counts, "
                  "--loss poisson may fit them better", file=out)
        y = _regression_target(y, args.data)
    model, reported = _model_settings(args, task)
    if out is not None:
        epochs = getattr(reported, "max_iter", None)
        _progress_reporting(reported, args.progress, epochs, out)
    start = time.perf_counter()
    if args.preset == "tabular":
        score_input = feature_columns(table, target_index, args.drop)
        caught = _fit(model, score_input, y)
    elif args.no_preprocessing:
        features = feature_columns(table, target_index, args.drop)
        score_input = numeric_matrix(features, args.data, np.dtype(args.dtype or "float64"))
        caught = _fit(model, score_input, y)
        if hasattr(features, "columns"):
            # as if trained on a DataFrame: predict picks the columns by name
            model.feature_names_in_ = np.asarray(features.columns, dtype=object)
        del features
    else:
        model, score_input, caught = _fit_with_preprocessing(args, model, table,
                                                             target_index, y, out)
    seconds = time.perf_counter() - start
    reported.set_params(callbacks=None)  # the progress display is not part of the model
    _save(model, args.output)
    if out is not None:
        for w in caught:
            print(f"{PROG} train: warning: {one_line(w.message)}", file=sys.stderr)
        print(_summary(model, seconds, _training_score(model, score_input, y, task), task),
              file=out)
        print(f"model saved to {args.output}", file=out)
    return 0


def _training_score(model, X, y, task):
    """Accuracy or R² on the training rows (``X``: the matrix the network
    trained on for a TabularPipeline)."""
    from ._compat import accuracy_score, r2_score

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        predicted = (model.predict_transformed(X) if hasattr(model, "predict_transformed")
                     else model.predict(X))
    return accuracy_score(y, predicted) if task == "classify" else r2_score(y, predicted)


def _save(model, output):
    try:
        model.save(output)
    except OSError as exc:
        raise CLIError(f"cannot write the model to {output}: {one_line(exc)}") from None


# ---------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------

def load_model(path):
    from . import load

    if not os.path.exists(path):
        raise CLIError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise CLIError(f"{path}: not a fastbp model file (expected a file written by "
                       "'fastbp train' or model.save())")
    try:
        return load(path)
    except (ValueError, OSError) as exc:
        raise CLIError(one_line(exc)) from None


def _by_name(model, table, wanted, skip):
    """The model's columns out of ``table`` by name; a note names the
    columns left out (except ``skip``)."""
    if table.names is None:
        raise CLIError(f"{table.path}: the model reads columns by name "
                       f"({', '.join(map(repr, wanted[:5]))}{', ...' if len(wanted) > 5 else ''})"
                       " but the file has no header row")
    missing = [name for name in wanted if name not in table.names]
    if missing:
        raise CLIError(f"{table.path}: no column {missing[0]!r}, which the model needs"
                       + (f" (also missing: {', '.join(map(repr, missing[1:4]))})"
                          if len(missing) > 1 else "")
                       + f"; the file's columns are {table.describe_columns()}")
    extra = [name for name in table.names if name not in wanted and name not in skip]
    if extra:
        print(f"{PROG}: note: ignoring {len(extra)} column(s) the model does not use: "
              f"{', '.join(map(repr, extra[:10]))}{', ...' if len(extra) > 10 else ''}",
              file=sys.stderr)
    return [table.names.index(name) for name in wanted]


def prediction_input(model, table, target, keep=()):
    """The rows of ``table`` as the model reads them (the columns it was
    trained on, by name or by position), ``target`` and ``keep`` aside."""
    preprocessed = hasattr(model, "preprocessor_")
    wanted = getattr(model, "feature_names_in_", None)
    if table.y is not None and target is not None:
        raise CLIError(f"{table.path}: holds arrays X and y; --target applies to CSV, "
                       "Parquet and .npy files only")
    if wanted is not None:
        columns = _by_name(model, table, [str(n) for n in wanted], set(keep) | {target})
    else:
        columns = list(range(table.n_columns))
        if target is not None:
            columns.remove(table.column_index(target))
        for name in keep:
            index = table.column_index(name)
            if index in columns:
                columns.remove(index)
        n_features = model.n_features_in_
        if len(columns) != n_features:
            hint = ("" if target is not None or len(columns) != n_features + 1
                    else "; if one column is the target, name it with --target")
            raise CLIError(f"{table.path}: {len(columns)} feature columns, but the model "
                           f"expects {n_features}{hint}")
    if preprocessed:
        return table.columns(columns) if wanted is not None else _positional(table, columns)
    dtype = model.coefs_[0].dtype
    return numeric_matrix(table.columns(columns), table.path, dtype)


def _kept_columns(table, keep):
    kept = []
    for name in keep:
        index = table.column_index(name)
        kept.append((table.column_name(index), [_format(v) for v in table.column(index)]))
    return kept


def predictions(model, X, proba):
    """``(predictions, probabilities or None)``, errors as one line."""
    with warnings.catch_warnings():
        # the columns were matched by name above
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        try:
            return model.predict(X), (model.predict_proba(X) if proba else None)
        except (ValueError, TypeError) as exc:
            raise CLIError(one_line(exc)) from None


def cmd_predict(args):
    model = load_model(args.model)
    # a model without preprocessing reads numbers only: a small CSV of them needs no pandas
    table = read_data(args, args.data, numbers_first=not hasattr(model, "preprocessor_"))
    classifier = hasattr(model, "predict_proba")
    if args.proba and not classifier:
        raise CLIError(f"--proba needs a classifier, but {args.model} holds a regression model")
    X = prediction_input(model, table, args.target, args.keep)
    kept = _kept_columns(table, args.keep)
    pred, proba = predictions(model, X, args.proba)
    pred = np.asarray(pred)
    header = [name for name, _ in kept]
    if pred.ndim == 1:
        header.append("prediction")
        columns = [[_format(v) for v in pred]]
    else:
        labels = model.classes_ if classifier else range(pred.shape[1])
        header += [f"prediction_{c}" for c in labels]
        columns = [[_format(v) for v in pred[:, k]] for k in range(pred.shape[1])]
    if proba is not None:
        header += [f"proba_{c}" for c in model.classes_]
        columns += [[_format(p) for p in proba[:, k]] for k in range(proba.shape[1])]
    rows = zip(*([values for _, values in kept] + columns))
    try:
        _write_csv(args.output, header, rows)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise CLIError(f"cannot write {args.output}: {one_line(exc)}") from None
    return 0
