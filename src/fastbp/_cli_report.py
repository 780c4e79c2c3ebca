"""``fastbp evaluate`` (a saved model scored on a file with its targets) and
``fastbp info`` (what a model file holds), as text or JSON.

The metrics are computed here with numpy (scikit-learn is not a
dependency), with scikit-learn's definitions: balanced accuracy is the mean
recall over the classes present in the targets; log-loss clips the
probabilities to [1e-15, 1 - 1e-15] and is averaged over the rows; the
confusion matrix counts rows by (true, predicted) label.
"""

import json
import math
import sys

import numpy as np

from ._cli_data import CLIError, target_values
from ._cli_train import load_model, one_line, prediction_input, predictions, read_data

__all__ = ["cmd_evaluate", "cmd_info", "classification_metrics", "regression_metrics"]

_LOG_LOSS_EPS = 1e-15


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------

def classification_metrics(y_true, y_pred, proba, classes):
    """Accuracy, balanced accuracy, log-loss and the confusion matrix; labels
    compared as text (a file's labels against the model's classes)."""
    true, pred = np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)
    names = [str(c) for c in classes]
    unknown = sorted({str(label) for label in np.unique(true)} - set(names))
    if unknown:
        raise CLIError(f"the targets hold labels the model does not know: "
                       f"{', '.join(map(repr, unknown[:5]))} (its classes are "
                       f"{', '.join(map(repr, names[:10]))})")
    index = {name: k for k, name in enumerate(names)}
    true_codes = np.array([index[t] for t in true], dtype=np.intp)
    pred_codes = np.array([index[p] for p in pred], dtype=np.intp)
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(matrix, (true_codes, pred_codes), 1)
    present = matrix.sum(axis=1) > 0
    recalls = np.diag(matrix)[present] / matrix.sum(axis=1)[present]
    picked = np.clip(proba[np.arange(len(true_codes)), true_codes], _LOG_LOSS_EPS,
                     1 - _LOG_LOSS_EPS)
    return {"task": "classification", "rows": int(len(true)),
            "accuracy": float(np.mean(true_codes == pred_codes)),
            "balanced_accuracy": float(np.mean(recalls)),
            "log_loss": float(-np.mean(np.log(picked))),
            "classes": names, "confusion_matrix": matrix.tolist()}


def regression_metrics(y_true, y_pred):
    """R², RMSE and MAE (averaged over the outputs when there are several)."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_true), -1)
    error = y_pred - y_true
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    residual = (error ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a constant target: 1 when predicted exactly, else 0 (scikit-learn's rule)
        r2 = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1),
                      np.where(residual == 0, 1.0, 0.0))
    return {"task": "regression", "rows": int(len(y_true)), "r2": float(np.mean(r2)),
            "rmse": float(np.mean(np.sqrt((error ** 2).mean(axis=0)))),
            "mae": float(np.mean(np.abs(error).mean(axis=0)))}


def _confusion_text(names, matrix):
    width = max([len(n) for n in names] + [len(str(v)) for row in matrix for v in row] + [4])
    lines = ["confusion matrix (rows: true label, columns: predicted)",
             " " * (width + 2) + "  ".join(f"{n:>{width}}" for n in names)]
    for name, row in zip(names, matrix):
        lines.append(f"  {name:>{width}}" + "".join(f"  {v:>{width}}" for v in row))
    return "\n".join(lines)


def _metrics_text(metrics, model_path, data_path, target):
    lines = [f"{model_path} on {data_path}: {metrics['rows']:,} rows, target {target!r}"]
    if metrics["task"] == "classification":
        lines += [f"accuracy           {metrics['accuracy']:.4f}",
                  f"balanced accuracy  {metrics['balanced_accuracy']:.4f}",
                  f"log-loss           {metrics['log_loss']:.4f}",
                  _confusion_text(metrics["classes"], metrics["confusion_matrix"])]
    else:
        lines += [f"R^2   {metrics['r2']:.4f}", f"RMSE  {metrics['rmse']:.6g}",
                  f"MAE   {metrics['mae']:.6g}"]
    return "\n".join(lines)


def cmd_evaluate(args):
    model = load_model(args.model)
    table = read_data(args, args.data)
    if table.y is not None:
        raise CLIError(f"{args.data}: holds arrays X and y; evaluate reads the targets from a "
                       "column (--target) of a CSV, Parquet or .npy file")
    target_index = table.column_index(args.target)
    target = table.column_name(target_index)
    y = target_values(table.column(target_index), target, args.data)
    X = prediction_input(model, table, args.target)
    classifier = hasattr(model, "predict_proba")
    pred, proba = predictions(model, X, classifier)
    if classifier:
        metrics = classification_metrics(y, pred, proba, model.classes_)
    else:
        if y.dtype.kind not in "biuf":
            raise CLIError(f"{args.data}: the target {target!r} holds text such as "
                           f"{str(y[0])!r}, but the model predicts numbers")
        metrics = regression_metrics(y, pred)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(_metrics_text(metrics, args.model, args.data, target))
    return 0


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------

def _network(mlp):
    sizes = [mlp.coefs_[0].shape[0]] + [c.shape[1] for c in mlp.coefs_]
    layers = [str(sizes[0])] + [f"{n} ({mlp.activation})" for n in sizes[1:-1]] + \
        [f"{sizes[-1]} ({mlp.out_activation_})"]
    return {"estimator": type(mlp).__name__, "layers": sizes, "hidden_activation":
            mlp.activation, "output_activation": mlp.out_activation_,
            "dtype": mlp.coefs_[0].dtype.name,
            "parameters": int(sum(c.size + b.size for c, b in zip(mlp.coefs_,
                                                                  mlp.intercepts_))),
            "text": " -> ".join(layers)}


def _features(preprocessor):
    names = (list(preprocessor.feature_names_in_) if hasattr(preprocessor, "feature_names_in_")
             else [f"x{j}" for j in range(preprocessor.n_features_in_)])
    details = {}
    for j in preprocessor.indicator_columns_:
        details[j] = "missing-value indicator"
    for j, levels, encoding, missing, other in zip(
            preprocessor.categorical_columns_, preprocessor.categories_,
            preprocessor.categorical_encoding_, preprocessor.missing_slot_,
            preprocessor.other_slot_):
        slots = f"{len(levels)} levels"
        slots += ", a missing slot" if missing else ""
        slots += ", an 'other' slot" if other else ""
        details[j] = f"{encoding}: {slots}"
    return [{"name": str(name), "kind": str(kind), "encoding": details.get(j, "")}
            for j, (name, kind) in enumerate(zip(names, preprocessor.column_kinds_))]


def _training(model):
    if hasattr(model, "estimators_"):
        return {"members": len(model.estimators_), "best_epochs": list(model.best_epochs_),
                "epochs_run": [int(n) for n in model.n_iter_],
                "best_held_out_scores": [max(s) if s else None
                                         for s in model.validation_scores_]}
    mlp = getattr(model, "mlp_", model)
    summary = {"epochs_run": int(mlp.n_iter_), "final_loss": float(mlp.loss_)}
    if getattr(mlp, "best_validation_score_", None) is not None:
        summary["best_validation_score"] = float(mlp.best_validation_score_)
    return summary


def describe(model, header):
    """What a loaded model and its file header say, as plain data."""
    mlps = model.estimators_ if hasattr(model, "estimators_") else [getattr(model, "mlp_",
                                                                            model)]
    preprocessor = getattr(model, "preprocessor_", None)
    info = {"estimator": type(model).__name__,
            "format_version": header["version"],
            "fastbp_version": header.get("fastbp_version", "0.1.0 or earlier (not recorded)"),
            "task": "classification" if hasattr(model, "classes_") else "regression",
            "networks": [_network(m) for m in mlps[:1]], "n_networks": len(mlps),
            "training": _training(model)}
    if hasattr(model, "classes_"):
        info["classes"] = [str(c) for c in model.classes_]
    if preprocessor is not None:
        info["features"] = _features(preprocessor)
        info["preprocessing"] = {"inputs": int(preprocessor.n_features_in_),
                                 "network_inputs": int(preprocessor.n_features_out_),
                                 "dtype": np.dtype(preprocessor.dtype).name}
    else:
        names = getattr(model, "feature_names_in_", None)
        info["features"] = [{"name": str(n), "kind": "numeric", "encoding": "as is"}
                            for n in (names if names is not None else
                                      [f"x{j}" for j in range(model.n_features_in_)])]
        info["preprocessing"] = None
    return info


def _short(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def _info_text(path, info):
    net = info["networks"][0]
    lines = [f"{path}: fastbp model file, format version {info['format_version']}, written "
             f"by fastbp {info['fastbp_version']}",
             f"estimator: {info['estimator']}"
             + (f" ({info['n_networks']} networks)" if info["n_networks"] > 1 else ""),
             f"task: {info['task']}"
             + (f", classes {', '.join(map(repr, info['classes'][:20]))}"
                if "classes" in info else ""),
             f"network: {net['text']}, {net['dtype']}, {net['parameters']:,} parameters"]
    training = info["training"]
    lines.append("training: " + ", ".join(f"{k.replace('_', ' ')} {_short(v)}"
                                          for k, v in training.items()))
    pre = info["preprocessing"]
    lines.append("preprocessing: none (the network reads the numbers as they are)" if pre is None
                 else f"preprocessing: TabularPreprocessor, {pre['inputs']} columns -> "
                      f"{pre['network_inputs']} network inputs ({pre['dtype']})")
    width = max(len(f["name"]) for f in info["features"])
    lines.append(f"features ({len(info['features'])}):")
    lines += [f"  {f['name']:<{width}}  {f['kind']}" + (f", {f['encoding']}" if f["encoding"]
                                                        else "")
              for f in info["features"]]
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return _json_safe(value.item())
    return value


def cmd_info(args):
    from ._io import read_header

    model = load_model(args.model)  # checks the whole file first
    try:
        header = read_header(args.model)
    except (ValueError, OSError) as exc:
        raise CLIError(one_line(exc)) from None
    info = describe(model, header)
    if args.json:
        print(json.dumps(_json_safe(info)))
    else:
        print(_info_text(args.model, info))
    sys.stdout.flush()
    return 0
