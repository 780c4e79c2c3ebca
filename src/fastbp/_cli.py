"""The ``fastbp`` command line (also ``python -m fastbp``).

    fastbp                      the demo (as ``fastbp demo``)
    fastbp train DATA ...       train a model from a CSV, .npy or .npz file
    fastbp predict MODEL DATA   predictions (and probabilities) as CSV
    fastbp bench ...            the head-to-head benchmark (fastbp._bench)
    fastbp demo ...             the seed's network on two moons

User errors (a missing file, an unknown column, a bad option) print one line
on stderr and exit with status 1 (2 for command-line syntax); only bugs show
a traceback. argparse only: no dependency beyond numpy and scipy.
"""

import argparse
import csv
import importlib
import importlib.util
import math
import os
import sys
import time
import warnings
import zipfile

import numpy as np

PROG = "fastbp"
EXIT_ERROR = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A user error: reported as one line, no traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``fastbp train: error: ... (see --help)``."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} "
                              f"(see '{self.prog} --help')\n")


# ---------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------

def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _fraction(text):
    value = _non_negative_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _batch_size(text):
    return "auto" if text == "auto" else _positive_int(text)


def _hidden_sizes(text):
    """``"64,32"`` -> ``(64, 32)``."""
    sizes = []
    for part in text.split(","):
        try:
            sizes.append(_positive_int(part.strip()))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected positive layer sizes separated by commas (e.g. 64,32), got "
                f"{text!r}") from None
    return tuple(sizes)


# ---------------------------------------------------------------------------
# data files
# ---------------------------------------------------------------------------

class Table:
    """Columns read from a data file: a 2-D array plus, for CSV, the column
    names (``None`` when the file has no header) and the raw text of each
    column (so a target column may hold class names)."""

    def __init__(self, path, columns, names, kind):
        self.path = path
        self.columns = columns      # list of 1-D arrays (str for CSV, numbers otherwise)
        self.names = names          # list of str, or None
        self.kind = kind            # 'csv', 'npy' or 'npz'

    @property
    def n_columns(self):
        return len(self.columns)

    def describe_columns(self):
        if self.names is not None:
            return ", ".join(repr(n) for n in self.names)
        return f"0 to {self.n_columns - 1}"

    def column_index(self, spec):
        """Index of the column named or numbered by ``spec`` (negative counts from the end)."""
        if self.names is not None and spec in self.names:
            if self.names.count(spec) > 1:
                raise CLIError(f"{self.path}: more than one column is named {spec!r}")
            return self.names.index(spec)
        try:
            index = int(spec)
        except ValueError:
            where = ("it has no header row" if self.names is None
                     else f"its columns are {self.describe_columns()}")
            raise CLIError(f"{self.path}: no column {spec!r} ({where})") from None
        if not -self.n_columns <= index < self.n_columns:
            raise CLIError(f"{self.path}: column index {index} is out of range: the file has "
                           f"{self.n_columns} columns")
        return index % self.n_columns

    def numeric(self, indices, dtype):
        """The given columns as a (n_rows, len(indices)) float array."""
        out = np.empty((len(self.columns[0]) if self.columns else 0, len(indices)), dtype=dtype)
        for j, index in enumerate(indices):
            column = self.columns[index]
            if column.dtype.kind in "biuf":
                out[:, j] = column
                continue
            for row, text in enumerate(column):
                try:
                    out[row, j] = float(text)
                except ValueError:
                    name = self.names[index] if self.names is not None else index
                    line = row + 1 + (self.names is not None)
                    raise CLIError(f"{self.path}, line {line}, column {name!r}: {str(text)!r} is "
                                   "not a number (every feature must be numeric)") from None
        return out


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path, header, delimiter):
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [row for row in csv.reader(fh, delimiter=delimiter) if row]
    if not rows:
        raise CLIError(f"{path}: the file is empty")
    if header == "auto":
        # a data row always has numeric features; a header row has none
        has_header = not any(_is_number(field) for field in rows[0])
    else:
        has_header = header == "yes"
    names = [name.strip() for name in rows[0]] if has_header else None
    body = rows[1:] if has_header else rows
    if not body:
        raise CLIError(f"{path}: no data rows")
    width = len(names) if names is not None else len(body[0])
    for line, row in enumerate(body, start=1 + has_header):
        if len(row) != width:
            raise CLIError(f"{path}, line {line}: {len(row)} fields, expected {width}")
    columns = [np.array([row[j].strip() for row in body]) for j in range(width)]
    return Table(path, columns, names, "csv")


def _read_npy_array(path, array, what):
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise CLIError(f"{path}: {what} must be a 2-D numeric array, got shape {array.shape} "
                       f"and dtype {array.dtype}")
    return Table(path, [array[:, j] for j in range(array.shape[1])], None, "npy")


def read_table(path, header="auto", delimiter=","):
    """Read a CSV (``.csv``/``.tsv``/``.txt``), ``.npy`` or ``.npz`` file.

    An ``.npz`` archive with arrays ``X`` (and ``y``) gives those; one with
    a single array is read like an ``.npy`` file. Files are read without
    pickle.
    """
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory, expected a data file")
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".npy":
            return _read_npy_array(path, np.load(path, allow_pickle=False), "the array")
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            if "X" in arrays:
                table = _read_npy_array(path, arrays["X"], "X")
                table.kind = "npz"
                table.y = arrays.get("y")
                if table.y is not None and len(table.y) != len(table.columns[0]):
                    raise CLIError(f"{path}: X has {len(table.columns[0])} rows but y has "
                                   f"{len(table.y)}")
                return table
            if len(arrays) == 1:
                return _read_npy_array(path, next(iter(arrays.values())), "the array")
            raise CLIError(f"{path}: expected arrays 'X' and 'y' (or a single array), found "
                           f"{sorted(arrays)}")
        return _read_csv(path, header, "\t" if suffix == ".tsv" and delimiter == "," else
                         delimiter)
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"{path}: cannot read it ({_one_line(exc)})") from None


def _labels(column):
    """A CSV target column as int labels when all are whole numbers, else strings."""
    if column.dtype.kind in "biuf":
        return column
    if all(_is_number(v) for v in column):
        values = column.astype(np.float64)
        if np.all(values == np.round(values)) and np.all(np.isfinite(values)):
            return values.astype(np.int64)
        return values
    return column


def _features_and_target(table, target, dtype):
    """(X, y, feature names or None) for training."""
    if getattr(table, "y", None) is not None:
        if target is not None:
            raise CLIError(f"{table.path}: holds arrays X and y; --target applies to CSV and "
                           ".npy files only")
        X = table.numeric(range(table.n_columns), dtype)
        return X, table.y, None
    if table.n_columns < 2:
        raise CLIError(f"{table.path}: needs at least two columns (features and the target)")
    index = table.column_index(target if target is not None else "-1")
    features = [j for j in range(table.n_columns) if j != index]
    X = table.numeric(features, dtype)
    y = _labels(table.columns[index])
    names = None if table.names is None else [table.names[j] for j in features]
    return X, y, names


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------

def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


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
# commands
# ---------------------------------------------------------------------------

def cmd_train(args):
    from . import MLP

    hidden = args.hidden
    dtype = np.dtype(args.dtype)
    table = read_table(args.data, args.header, args.delimiter)
    X, y, names = _features_and_target(table, args.target, dtype)
    task = args.task
    if task == "auto":
        y_arr = np.asarray(y)
        task = "regress" if y_arr.dtype.kind == "f" else "classify"
    if task == "regress":
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise CLIError(f"{args.data}: --task regress needs a numeric target, but the "
                           f"target column holds text such as {str(y.ravel()[0])!r}")
        y = y.astype(dtype)
    model = MLP(
        hidden_layer_sizes=hidden, activation=args.activation,
        loss="log_loss" if task == "classify" else "squared_error",
        solver=args.solver, alpha=args.alpha, batch_size=args.batch_size,
        learning_rate_init=args.learning_rate, max_iter=args.epochs,
        random_state=args.random_state, early_stopping=args.early_stopping,
        validation_fraction=args.validation_fraction,
        n_iter_no_change=args.n_iter_no_change,
    )
    out = sys.stdout
    if not args.quiet:
        print(f"{'classification' if task == 'classify' else 'regression'}: "
              f"{X.shape[0]} samples, {X.shape[1]} features from {args.data}; hidden layers "
              f"{', '.join(map(str, hidden))} ({args.activation}), {args.solver}, "
              f"{dtype.name}", file=out)
        _progress_reporting(model, args.progress, args.epochs, out)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X, y)
        except (ValueError, TypeError) as exc:
            raise CLIError(_one_line(exc)) from None
    seconds = time.perf_counter() - start
    score = model.score(X, y) if not args.quiet else None
    if not args.quiet:
        for w in caught:
            print(f"{PROG} train: warning: {_one_line(w.message)}", file=sys.stderr)
    model.set_params(callbacks=None)  # the progress display is not part of the model
    if names is not None:
        # as if trained on a dataframe: predict can pick the columns by name
        model.feature_names_in_ = np.asarray(names, dtype=object)
    output = args.output
    try:
        model.save(output)
    except OSError as exc:
        raise CLIError(f"cannot write the model to {output}: {_one_line(exc)}") from None
    if not args.quiet:
        sizes = "-".join(str(n) for n in [c.shape[0] for c in model.coefs_]
                         + [model.coefs_[-1].shape[1]])
        metric = "accuracy" if task == "classify" else "R^2"
        summary = (f"trained {sizes} in {seconds:.2f} s ({model.n_iter_} "
                   f"{'iterations' if args.solver == 'lbfgs' else 'epochs'}), loss "
                   f"{model.loss_:.6f}, training {metric} {score:.4f}")
        if getattr(model, "best_validation_score_", None) is not None:
            summary += f", best validation {metric} {model.best_validation_score_:.4f}"
        print(summary, file=out)
        print(f"model saved to {output}", file=out)
    return 0


def _prediction_columns(model, table, target):
    """The feature matrix for ``model`` out of ``table``."""
    dtype = model.coefs_[0].dtype
    n_features = model.n_features_in_
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is not None and table.names is not None:
        missing = [n for n in fitted_names if n not in table.names]
        if missing:
            raise CLIError(f"{table.path}: the model needs columns {missing} that the file "
                           f"lacks (its columns are {table.describe_columns()})")
        return table.numeric([table.names.index(n) for n in fitted_names], dtype)
    columns = list(range(table.n_columns))
    if target is not None:
        columns.remove(table.column_index(target))
    if len(columns) != n_features:
        hint = ("" if target is not None or len(columns) != n_features + 1
                else "; if one column is the target, name it with --target")
        raise CLIError(f"{table.path}: {len(columns)} feature columns, but the model expects "
                       f"{n_features}{hint}")
    return table.numeric(columns, dtype)


def cmd_predict(args):
    from . import load

    if not os.path.exists(args.model):
        raise CLIError(f"{args.model}: no such model file")
    if not zipfile.is_zipfile(args.model):
        raise CLIError(f"{args.model}: not a fastbp model file (expected a file written by "
                       "'fastbp train' or model.save())")
    try:
        model = load(args.model)
    except (ValueError, OSError) as exc:
        raise CLIError(_one_line(exc)) from None
    table = read_table(args.data, args.header, args.delimiter)
    if getattr(table, "y", None) is not None and args.target is not None:
        raise CLIError(f"{args.data}: holds arrays X and y; --target applies to CSV and .npy "
                       "files only")
    X = _prediction_columns(model, table, args.target)
    classifier = hasattr(model, "predict_proba")
    if args.proba and not classifier:
        raise CLIError(f"--proba needs a classifier, but {args.model} holds a regression model")
    with warnings.catch_warnings():
        # the columns were matched by name above
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        try:
            pred = model.predict(X)
            proba = model.predict_proba(X) if args.proba else None
        except (ValueError, TypeError) as exc:
            raise CLIError(_one_line(exc)) from None
    pred = np.asarray(pred)
    if pred.ndim == 1:
        header = ["prediction"]
        rows = [[_format(v)] for v in pred]
    else:
        labels = model.classes_ if classifier else range(pred.shape[1])
        header = [f"prediction_{c}" for c in labels]
        rows = [[_format(v) for v in row] for row in pred]
    if proba is not None:
        header += [f"proba_{c}" for c in model.classes_]
        rows = [row + [_format(p) for p in probs] for row, probs in zip(rows, proba)]
    try:
        _write_csv(args.output, header, rows)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise CLIError(f"cannot write {args.output}: {_one_line(exc)}") from None
    return 0


def cmd_bench(args):
    try:
        bench = importlib.import_module("fastbp._bench")
    except ModuleNotFoundError as exc:
        if exc.name != "fastbp._bench":
            raise
        if any(a in ("-h", "--help") for a in args.bench_args):
            args.bench_parser.print_help()
            print("\nThe benchmark (fastbp._bench) is not part of this fastbp installation.")
            return 0
        raise CLIError("the benchmark (fastbp._bench) is not part of this fastbp "
                       "installation") from None
    try:
        return bench.main(list(args.bench_args))
    except SystemExit as exc:  # the benchmark's own argparse: --help, usage errors
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return EXIT_ERROR


def cmd_demo(args):
    from ._demo import run

    run(n_samples=args.samples, hidden=args.hidden, epochs=args.epochs,
        batch_size=args.batch_size, random_state=args.random_state)
    return 0


# ---------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------

def _add_data_options(parser):
    parser.add_argument("--header", choices=("auto", "yes", "no"), default="auto",
                        help="whether a CSV's first row holds column names (default: auto, "
                             "yes when none of its fields is a number)")
    parser.add_argument("--delimiter", default=",", metavar="CHAR",
                        help="CSV field separator (default: ','; tab for .tsv files)")


def build_parser():
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="fastbp: fast multilayer perceptrons for CPUs. Without a command, "
                    "runs the demo.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.commands = {"train": _add_train_command(sub), "predict": _add_predict_command(sub),
                       "bench": _add_bench_command(sub), "demo": _add_demo_command(sub)}
    return parser


def _add_train_command(sub):
    from ._sklearn_api import HIDDEN_ACTIVATIONS

    train = sub.add_parser(
        "train", help="train a model from a CSV, .npy or .npz file and save it",
        description="Train an MLP on a data file and save it in fastbp's pickle-free "
                    "format (load it back with fastbp.load or 'fastbp predict').",
        epilog="DATA: a CSV file (a header row is detected; features must be numbers, the "
               "target may be class names), a 2-D .npy array, or an .npz archive with "
               "arrays X and y. Example: fastbp train iris.csv --target species "
               "--hidden 32 --epochs 300 -o iris.fbp")
    train.add_argument("data", metavar="DATA", help="training data file")
    train.add_argument("-t", "--target", metavar="COLUMN",
                       help="target column: a name from the header or an index, negative "
                            "from the end (default: the last column)")
    train.add_argument("--task", choices=("auto", "classify", "regress"), default="auto",
                       help="auto (default): regression when the target holds non-integer "
                            "numbers, else classification")
    train.add_argument("--hidden", type=_hidden_sizes, default=(100,), metavar="SIZES",
                       help="hidden layer sizes separated by commas, e.g. 64 or 64,32 "
                            "(default: 100)")
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="relu",
                       help="hidden activation (default: relu)")
    train.add_argument("--solver", choices=("adam", "sgd", "lbfgs"), default="adam",
                       help="optimizer (default: adam)")
    train.add_argument("--epochs", type=_positive_int, default=200, metavar="N",
                       help="maximum epochs (lbfgs: iterations) (default: 200)")
    train.add_argument("--batch-size", type=_batch_size, default="auto", metavar="N",
                       help="mini-batch size or 'auto' = min(200, n_samples) (default: auto)")
    train.add_argument("--learning-rate", type=_non_negative_float, default=0.001,
                       metavar="RATE", help="initial learning rate (default: 0.001)")
    train.add_argument("--alpha", type=_non_negative_float, default=0.0001,
                       help="L2 penalty (default: 0.0001)")
    train.add_argument("--random-state", type=int, default=None, metavar="SEED",
                       help="seed for the initial weights and shuffling (default: random)")
    train.add_argument("--early-stopping", action="store_true",
                       help="hold out --validation-fraction of the data and stop when its "
                            "score stops improving")
    train.add_argument("--validation-fraction", type=_fraction, default=0.1, metavar="F",
                       help="share held out by --early-stopping (default: 0.1)")
    train.add_argument("--n-iter-no-change", type=_positive_int, default=10, metavar="N",
                       help="epochs without improvement before stopping (default: 10)")
    train.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                       help="precision of training and of the saved model (default: float64)")
    train.add_argument("-o", "--output", default="model.fbp", metavar="PATH",
                       help="where to save the model (default: model.fbp)")
    train.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                       help="a progress bar (needs tqdm) or one line per epoch; auto "
                            "(default): the bar in a terminal when tqdm is installed")
    train.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    _add_data_options(train)
    train.set_defaults(func=cmd_train)
    return train


def _add_predict_command(sub):
    predict = sub.add_parser(
        "predict", help="predict with a saved model, as CSV",
        description="Predict every row of DATA with a model saved by 'fastbp train' or "
                    "model.save(); writes CSV with a 'prediction' column (and one "
                    "'proba_<class>' column per class with --proba).",
        epilog="Columns are matched by name when the model was trained on a CSV with a "
               "header; otherwise DATA must hold exactly the model's features (or those "
               "plus the --target column, which is skipped).")
    predict.add_argument("model", metavar="MODEL", help="saved model file")
    predict.add_argument("data", metavar="DATA", help="data file (CSV, .npy or .npz)")
    predict.add_argument("-o", "--output", metavar="PATH",
                         help="write the CSV here (default: standard output)")
    predict.add_argument("--proba", action="store_true",
                         help="add class probabilities (classifiers)")
    predict.add_argument("-t", "--target", metavar="COLUMN",
                         help="a column of DATA to skip (e.g. the labels)")
    _add_data_options(predict)
    predict.set_defaults(func=cmd_predict)
    return predict


def _add_bench_command(sub):
    bench = sub.add_parser(
        "bench", help="time fastbp against scikit-learn and PyTorch (when installed)",
        description="Runs fastbp's head-to-head benchmark; every argument is passed on "
                    "to it ('fastbp bench --help' lists them).", add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="ARGS",
                       help="arguments of the benchmark")
    bench.set_defaults(func=cmd_bench, bench_parser=bench)  # main() dispatches bench itself
    return bench


def _add_demo_command(sub):
    demo = sub.add_parser(
        "demo", help="train the seed's 2-16-1 network on two moons (the default command)",
        description="Trains the seed's kind of network (ReLU hidden layer, sigmoid output, "
                    "binary cross-entropy) on generated two-moons data, with progress, "
                    "accuracy and timing.")
    demo.add_argument("--samples", type=_positive_int, default=4000, metavar="N",
                      help="samples generated, 3/4 for training (default: 4000)")
    demo.add_argument("--hidden", type=_positive_int, default=16, metavar="N",
                      help="hidden units (default: 16)")
    demo.add_argument("--epochs", type=_positive_int, default=60, metavar="N",
                      help="training epochs (default: 60)")
    demo.add_argument("--batch-size", type=_positive_int, default=32, metavar="N",
                      help="mini-batch size (default: 32)")
    demo.add_argument("--random-state", type=int, default=0, metavar="SEED",
                      help="seed of the data and the weights (default: 0)")
    demo.set_defaults(func=cmd_demo)
    return demo


def main(argv=None):
    """Run the command line with ``argv`` (``sys.argv[1:]`` when None);
    returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] == ["bench"]:
        # everything after 'bench' belongs to the benchmark, '--help' included
        args = argparse.Namespace(command="bench", func=cmd_bench, bench_args=argv[1:],
                                  bench_parser=parser.commands["bench"])
    else:
        try:
            args = parser.parse_args(argv or ["demo"])
        except SystemExit as exc:  # --help, --version, usage errors
            return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        status = args.func(args)
        if not argv:
            print(f"\n'{PROG} --help' lists the commands: train, predict, bench, demo.")
        return status
    except CLIError as exc:
        name = f"{PROG} {args.command}"
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output went away (e.g. `fastbp predict ... | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
