"""The ``fastbp`` command line (also ``python -m fastbp``).

    fastbp                      the demo (as ``fastbp demo``)
    fastbp train DATA ...       train a model from a CSV, Parquet, .npy or .npz file
    fastbp predict MODEL DATA   predictions (and probabilities) as CSV
    fastbp evaluate MODEL DATA  scores against the file's targets (--json)
    fastbp info MODEL           what a model file holds
    fastbp bench ...            the head-to-head benchmark (fastbp._bench)
    fastbp demo ...             the seed's network on two moons

User errors (a missing file, an unknown column, a bad option) print one line
on stderr and exit with status 1 (2 for command-line syntax); only bugs show
a traceback. argparse only; data files are read by ``_cli_data`` (pandas
and pyarrow when installed), train and predict live in ``_cli_train``,
evaluate and info in ``_cli_report``.
"""

import argparse
import importlib
import math
import os
import sys

from ._cli_data import CLIError

PROG = "fastbp"
EXIT_ERROR = 1
EXIT_USAGE = 2


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
# commands
# ---------------------------------------------------------------------------

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
    data = parser.add_argument_group("reading the data file")
    data.add_argument("--header", choices=("auto", "yes", "no"), default="auto",
                      help="whether a CSV's first row holds column names (default: auto, "
                           "yes when none of its fields is a number or a missing marker)")
    data.add_argument("--delimiter", default=None, metavar="CHAR",
                      help="CSV field separator (default: guessed among , ; tab | from the "
                           "first lines; tab for .tsv files)")
    data.add_argument("--encoding", default="utf-8", metavar="NAME",
                      help="the CSV file's text encoding (default: utf-8, with or without a "
                           "BOM; e.g. cp1252 for Windows-1252, latin-1)")
    data.add_argument("--missing-question-mark", action="store_true",
                      help="read '?' cells as missing too (the missing markers are: empty, "
                           "NA, N/A, NaN, nan, null, NULL, None)")


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
                       "evaluate": _add_evaluate_command(sub), "info": _add_info_command(sub),
                       "bench": _add_bench_command(sub), "demo": _add_demo_command(sub)}
    return parser


def _add_train_command(sub):
    from ._cli_data import INTEGER_CLASSES_MAX
    from ._sklearn_api import HIDDEN_ACTIVATIONS

    train = sub.add_parser(
        "train", help="train a model from a CSV, Parquet, .npy or .npz file and save it",
        description="Train on a data file and save the model in fastbp's pickle-free "
                    "format (use it with 'fastbp predict', 'evaluate', 'info' or "
                    "fastbp.load). Text, bool and date columns and missing values go "
                    "through the tabular preprocessing (robust scaling, missing-value "
                    "indicators, one-hot categories), which the model file keeps.",
        epilog="DATA: a CSV file (pandas reads it when installed: pip install "
               "'fastbp[cli]'; without pandas, numbers only), a Parquet file (pandas and "
               "pyarrow), a 2-D .npy array, or an .npz archive with arrays X and y. "
               "Example: fastbp train diamonds.csv --target price -o diamonds.fbp")
    train.add_argument("data", metavar="DATA", help="training data file")
    train.add_argument("-t", "--target", metavar="COLUMN",
                       help="target column: a name from the header or an index, negative "
                            "from the end (default: the last column)")
    train.add_argument("--drop", metavar="COLUMN", action="append", default=[],
                       help="a column not to learn from (e.g. an id); repeat for several")
    train.add_argument("--task", choices=("auto", "classify", "regress"), default="auto",
                       help="auto (default): classification for text or true/false targets "
                            f"and integer targets with at most {INTEGER_CLASSES_MAX} distinct "
                            "values; regression for other numbers. The choice and its "
                            "reason are printed")
    train.add_argument("--preset", choices=("none", "tabular"), default="none",
                       help="tabular: the tabular preset's recipe (TabularMLPClassifier / "
                            "Regressor: 3 x 256 hidden units, Adam, the best epoch on "
                            "held-out rows kept); none (default): one MLP with the options "
                            "below")
    train.add_argument("--no-preprocessing", action="store_true",
                       help="train the MLP on the raw numbers (every feature column must be "
                            "numeric; no scaling or encoding)")
    train.add_argument("--hidden", type=_hidden_sizes, default=None, metavar="SIZES",
                       help="hidden layer sizes separated by commas, e.g. 64 or 64,32 "
                            "(default: 100; the preset's: 256,256,256)")
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default=None,
                       help="hidden activation (default: relu)")
    train.add_argument("--solver", choices=("adam", "sgd", "lbfgs"), default=None,
                       help="optimizer (default: adam)")
    train.add_argument("--loss", choices=("squared_error", "poisson", "huber",
                                          "absolute_error"), default=None,
                       help="regression loss (default: squared_error)")
    train.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                       help="maximum epochs (lbfgs: iterations) (default: 200; the "
                            "preset's: 100)")
    train.add_argument("--batch-size", type=_batch_size, default=None, metavar="N",
                       help="mini-batch size or 'auto' = min(200, n_samples) (default: auto; "
                            "the preset's: 256)")
    train.add_argument("--learning-rate", type=_non_negative_float, default=None,
                       metavar="RATE", help="initial learning rate (default: 0.001)")
    train.add_argument("--alpha", type=_non_negative_float, default=None,
                       help="L2 penalty (default: 0.0001)")
    train.add_argument("--random-state", type=int, default=None, metavar="SEED",
                       help="seed for the initial weights and shuffling (default: random)")
    train.add_argument("--early-stopping", action="store_true",
                       help="hold out --validation-fraction of the data and stop when its "
                            "score stops improving")
    train.add_argument("--validation-fraction", type=_fraction, default=None, metavar="F",
                       help="share held out by --early-stopping (default: 0.1; the "
                            "preset's: 0.2)")
    train.add_argument("--n-iter-no-change", type=_positive_int, default=None, metavar="N",
                       help="epochs without improvement before stopping (default: 10; the "
                            "preset's: 16)")
    train.add_argument("--ensemble", type=_positive_int, default=None, metavar="N",
                       help="--preset tabular: networks trained and averaged (default: 1)")
    train.add_argument("--dtype", choices=("float64", "float32"), default=None,
                       help="precision of training and of the saved model (default: "
                            "float64; the preset's: float32)")
    train.add_argument("-o", "--output", default="model.fbp", metavar="PATH",
                       help="where to save the model (default: model.fbp)")
    train.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                       help="a progress bar (needs tqdm) or one line per epoch; auto "
                            "(default): the bar in a terminal when tqdm is installed")
    train.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    _add_data_options(train)
    train.set_defaults(func=_run("_cli_train", "cmd_train"))
    return train


def _add_predict_command(sub):
    predict = sub.add_parser(
        "predict", help="predict with a saved model, as CSV",
        description="Predict every row of DATA with a model saved by 'fastbp train' or "
                    "model.save(); writes CSV with a 'prediction' column (labels in their "
                    "original form) and, with --proba, one 'proba_<class>' column per class.",
        epilog="Columns are matched by name when the model was trained on named columns "
               "(any order; columns the model does not use are ignored with a note; a "
               "missing one is an error naming it); otherwise DATA must hold exactly the "
               "model's features in order (or those plus the --target column, which is "
               "skipped).")
    predict.add_argument("model", metavar="MODEL", help="saved model file")
    predict.add_argument("data", metavar="DATA", help="data file (CSV, Parquet, .npy or .npz)")
    predict.add_argument("-o", "--output", metavar="PATH",
                         help="write the CSV here (default: standard output)")
    predict.add_argument("--proba", action="store_true",
                         help="add class probabilities (classifiers)")
    predict.add_argument("-t", "--target", metavar="COLUMN",
                         help="a column of DATA to skip (e.g. the labels)")
    predict.add_argument("-k", "--keep", metavar="COLUMN", action="append", default=[],
                         help="copy this column of DATA (e.g. an id) into the output, first; "
                              "repeat for several")
    _add_data_options(predict)
    predict.set_defaults(func=_run("_cli_train", "cmd_predict"))
    return predict


def _add_evaluate_command(sub):
    evaluate = sub.add_parser(
        "evaluate", help="score a saved model on a data file with its targets",
        description="Predict every row of DATA and compare with its --target column: "
                    "accuracy, balanced accuracy, log-loss and the confusion matrix for "
                    "classifiers; R^2, RMSE and MAE for regressors.",
        epilog="Columns are matched as by 'fastbp predict'.")
    evaluate.add_argument("model", metavar="MODEL", help="saved model file")
    evaluate.add_argument("data", metavar="DATA", help="data file with the true targets")
    evaluate.add_argument("-t", "--target", metavar="COLUMN", required=True,
                          help="the column of true targets (a name or an index)")
    evaluate.add_argument("--json", action="store_true",
                          help="print the figures as one JSON object")
    _add_data_options(evaluate)
    evaluate.set_defaults(func=_run("_cli_report", "cmd_evaluate"))
    return evaluate


def _add_info_command(sub):
    info = sub.add_parser(
        "info", help="describe a saved model (no training, no data)",
        description="What a model file holds: the estimator, its layers and activations, "
                    "classes, the feature columns and their kinds, the preprocessing, the "
                    "fastbp and format versions, and a training summary.")
    info.add_argument("model", metavar="MODEL", help="saved model file")
    info.add_argument("--json", action="store_true", help="print it as one JSON object")
    info.set_defaults(func=_run("_cli_report", "cmd_info"))
    return info


def _run(module, function):
    """The command function ``function`` of ``fastbp.<module>``, imported when
    it runs (``fastbp --help`` imports neither)."""
    def run(args):
        return getattr(importlib.import_module(f"fastbp.{module}"), function)(args)
    return run


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
            print(f"\n'{PROG} --help' lists the commands: train, predict, evaluate, info, "
                  "bench, demo.")
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
