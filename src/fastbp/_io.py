"""Save and load models without pickle.

A model file is a NumPy ``.npz`` archive read with ``allow_pickle=False``:

* ``header``: a UTF-8 JSON document (as a uint8 array) with the format name and
  version, the estimator class, its constructor parameters, the scalar fitted
  attributes and the dtype and layer sizes;
* ``params``: the flat parameter buffer ``[W0, b0, W1, b1, ...]``;
* ``classes``: the class labels (classifiers; numbers or unicode strings);
* ``opt_state1`` / ``opt_state2`` and ``best_params`` when present, so that
  training can continue (``partial_fit``, ``warm_start``) exactly where it
  stopped.

Nothing in the file is executed or unpickled on load: unknown classes,
versions, shapes or dtypes raise ``ValueError``.
"""

import io
import json
import numbers
import os
import zipfile

import numpy as np

FORMAT_NAME = "fastbp-model"
FORMAT_VERSION = 1

__all__ = ["save_model", "load"]

_SCALAR_ATTRS = ("n_features_in_", "n_iter_", "n_layers_", "n_outputs_", "t_", "loss_",
                 "best_loss_", "best_validation_score_", "out_activation_",
                 "_no_improvement_count")
_LIST_ATTRS = ("loss_curve_", "validation_scores_", "validation_loss_curve_")


def _jsonable(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if v != v:
            return {"float": "nan"}
        if v in (float("inf"), float("-inf")):
            return {"float": "inf" if v > 0 else "-inf"}
        return v
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):  # class_weight: keys may be numbers, which JSON cannot key
        return {"dict": [[_jsonable(k), _jsonable(v)] for k, v in value.items()]}
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    if isinstance(value, dict) and set(value) == {"dict"}:
        return {_from_json(k): _from_json(v) for k, v in value["dict"]}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def save_model(model, path):
    from ._estimators import _BaseMLP

    if not isinstance(model, _BaseMLP):
        raise TypeError(f"can only save fastbp estimators, got {type(model).__name__}")
    model._check_fitted()
    net = model._sync()
    params = model.get_params()
    if not isinstance(params.get("random_state"), (type(None), numbers.Integral)):
        params["random_state"] = None  # a RandomState instance is not data
    if params.get("callbacks") is not None:
        params["callbacks"] = None  # code, not data: set callbacks again after load
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "estimator": type(model).__name__,
        "params": {k: _jsonable(v) for k, v in params.items()},
        "dtype": net.dtype.name,
        "sizes": list(net.sizes),
        "hidden_activation": net.spec.hidden_activation,
        "output_activation": net.spec.output_activation,
        "attrs": {k: _jsonable(getattr(model, k)) for k in _SCALAR_ATTRS if hasattr(model, k)},
        "lists": {k: _jsonable(getattr(model, k)) for k in _LIST_ATTRS if hasattr(model, k)},
    }
    arrays = {"params": net.params}
    if model._is_classifier():
        enc = model._label_encoding
        classes = np.asarray(enc.classes_)
        if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes):
            classes = classes.astype(str)
        if classes.dtype.kind not in "biufU":
            raise TypeError(
                f"class labels of dtype {classes.dtype} cannot be saved without pickle; "
                "use numbers or strings as labels"
            )
        arrays["classes"] = classes
        header["y_type"] = enc.y_type_
    if hasattr(model, "feature_names_in_"):
        header["feature_names_in_"] = [str(n) for n in model.feature_names_in_]
    opt = getattr(model, "_optimizer", None)
    if opt is not None:
        header["optimizer"] = {k: _jsonable(getattr(opt, k)) for k in (
            "solver", "learning_rate_init", "learning_rate", "lr_schedule", "momentum",
            "nesterov", "power_t", "beta_1", "beta_2", "epsilon", "t")}
        arrays["opt_state1"] = opt.state1
        arrays["opt_state2"] = opt.state2
    if hasattr(model, "_best_params"):
        arrays["best_params"] = model._best_params
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)


def _bad(path, why):
    return ValueError(f"{os.fspath(path)!s} is not a valid fastbp model file: {why}")


def load(path):
    """Load a model saved with ``model.save(path)``.

    Never unpickles or executes anything from the file: it is safe to load
    files from untrusted sources (the worst a bad file can do is raise
    ``ValueError``).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    model : MLP, MLPClassifier or MLPRegressor
    """
    from . import _estimators
    from ._compat import LabelEncoding
    from ._network import Network

    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _bad(path, f"cannot read it as an .npz archive ({exc})") from None
    with archive:
        try:
            files = set(archive.files)
            if "header" not in files or "params" not in files:
                raise _bad(path, "the header or the parameters are missing")
            header_arr = archive["header"]
            if header_arr.dtype != np.uint8 or header_arr.ndim != 1:
                raise _bad(path, "the header is malformed")
            try:
                header = json.loads(header_arr.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise _bad(path, f"the header is not valid JSON ({exc})") from None
            if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
                raise _bad(path, "it is not a fastbp model")
            version = header.get("version")
            if version != FORMAT_VERSION:
                raise _bad(path, f"format version {version!r}; this fastbp reads version "
                           f"{FORMAT_VERSION}. Re-save the model with a matching fastbp.")
            cls = {"MLP": _estimators.MLP, "MLPClassifier": _estimators.MLPClassifier,
                   "MLPRegressor": _estimators.MLPRegressor}.get(header.get("estimator"))
            if cls is None:
                raise _bad(path, f"unknown estimator {header.get('estimator')!r}")
            dtype = header.get("dtype")
            if dtype not in ("float32", "float64"):
                raise _bad(path, f"unsupported dtype {dtype!r}")
            params = archive["params"]
            sizes = header.get("sizes")
            if (not isinstance(sizes, list) or len(sizes) < 2
                    or not all(isinstance(s, int) and s >= 1 for s in sizes)):
                raise _bad(path, "layer sizes are malformed")
            expected = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
            if params.dtype != np.dtype(dtype) or params.shape != (expected,):
                raise _bad(path, f"parameters have dtype {params.dtype} and shape "
                           f"{params.shape}, expected {dtype} and ({expected},)")
            if not np.all(np.isfinite(params)):
                raise _bad(path, "parameters contain NaN or infinity")
            try:
                model = cls(**{k: _from_json(v) for k, v in header["params"].items()})
                if isinstance(model.hidden_layer_sizes, list):
                    model.hidden_layer_sizes = tuple(model.hidden_layer_sizes)
                net = Network(sizes, header["hidden_activation"], header["output_activation"],
                              np.dtype(dtype), np.array(params, dtype=dtype))
            except (TypeError, ValueError, KeyError) as exc:
                raise _bad(path, f"inconsistent contents ({exc})") from None
            model._net = net
            model.coefs_ = list(net.coefs)
            model.intercepts_ = list(net.intercepts)
            for k, v in header.get("attrs", {}).items():
                if k in _SCALAR_ATTRS:
                    setattr(model, k, _from_json(v))
            for k, v in header.get("lists", {}).items():
                if k in _LIST_ATTRS:
                    setattr(model, k, None if v is None else [float(x) for x in _from_json(v)])
            if "feature_names_in_" in header:
                model.feature_names_in_ = np.asarray(header["feature_names_in_"], dtype=object)
            if model._is_classifier():
                if "classes" not in files:
                    raise _bad(path, "class labels are missing")
                enc = LabelEncoding()
                enc.classes_ = archive["classes"]
                enc.y_type_ = header.get("y_type")
                if enc.y_type_ not in ("binary", "multiclass", "multilabel-indicator"):
                    raise _bad(path, f"unknown target type {enc.y_type_!r}")
                model._label_encoding = enc
                model.classes_ = enc.classes_
            if "best_params" in files:
                best = archive["best_params"]
                if best.shape != params.shape or best.dtype != params.dtype:
                    raise _bad(path, "best_params does not match the parameters")
                model._best_params = np.array(best)
            if "optimizer" in header:
                o = header["optimizer"]
                opt = _estimators._Optimizer(model, params.size, np.dtype(dtype))
                for k in ("learning_rate_init", "learning_rate", "momentum", "power_t",
                          "beta_1", "beta_2", "epsilon"):
                    setattr(opt, k, float(_from_json(o[k])))
                opt.solver = o["solver"]
                opt.lr_schedule = o["lr_schedule"]
                opt.nesterov = bool(o["nesterov"])
                opt.t = int(o["t"])
                s1, s2 = archive["opt_state1"], archive["opt_state2"]
                if (s1.shape != opt.state1.shape or s2.shape != opt.state2.shape
                        or s1.dtype != opt.state1.dtype or s2.dtype != opt.state2.dtype):
                    raise _bad(path, "optimizer state does not match the parameters")
                opt.state1[...] = s1
                opt.state2[...] = s2
                model._optimizer = opt
        except KeyError as exc:
            raise _bad(path, f"missing entry {exc}") from None
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise _bad(path, f"the archive is damaged ({exc})") from None
    return model
