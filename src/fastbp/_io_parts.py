"""Model files of models made of parts (format version 3): the tabular
presets and TabularPipeline, a preprocessing in front of MLPs.

The archive's entries (``_io`` checks each one before reading it):

* ``header``: the JSON document: format, version 3, the fastbp version,
  the estimator class, its parameters (a TabularPipeline's: None or
  'fitted', and scale_target), ``preprocessor`` (the preprocessing's
  state without its two arrays), ``members`` (per MLP, the header fields a version
  2 file has for it), ``attrs`` (a preset's best epochs and held-out
  scores), ``rngs`` (a RandomState ``random_state``);
* ``preprocessor/centre``, ``preprocessor/scale``: the numeric columns'
  centres and scales (float64);
* ``members/<k>/params``, ``members/<k>/classes``: each MLP's entries, as a
  version 2 file stores them. Only what predicting needs: a preset cannot
  continue training, so its MLPs' optimizer state is not kept;
* ``classes`` (a classifier preset's labels), ``target_mean`` and
  ``target_scale`` (a regressor preset's target scaling), ``rng_keys``.

Loading rebuilds each part with the checks of its own format (every MLP as
``_io.read_mlp`` reads a version 2 file, the preprocessing through
``TabularPreprocessor.from_state``) and then checks that the parts fit
together (``fastbp.tabular._state.set_state``).
"""

import importlib

import numpy as np

from . import _io
from ._io import _BadFile, _encode_classes, _from_json, _jsonable, _require
from ._state import estimator_class, is_count
from ._validation import validate_params

__all__ = ["save_parts", "read_parts"]

_PRESETS = ("TabularMLPClassifier", "TabularMLPRegressor")
_PARTS_MODELS = _PRESETS + ("TabularPipeline",)
_MAX_MEMBERS = 10_000
# what only training needs: dropped from the members' entries
_TRAINING_ONLY = ("optimizer", "best_params", "fit_random_state")


def save_parts(model, path):
    """Write the fitted ``model`` (a preset or TabularPipeline) to ``path``."""
    model._check_fitted()
    _io.write_entries(parts_entries(model._to_state()), path)


def _json_params(params):
    """Constructor parameters as JSON values (callbacks are code: not kept;
    a dtype by its name)."""
    params = dict(params)
    if "callbacks" in params:
        params["callbacks"] = None
    if "dtype" in params:
        params["dtype"] = np.dtype(params["dtype"]).name
    return params


def _preprocessor_entries(state):
    fields = {key: _jsonable(value) for key, value in state.items()
              if key not in ("params", "centre", "scale")}
    fields["params"] = {k: _jsonable(v) for k, v in _json_params(state["params"]).items()}
    return fields, {"preprocessor/centre": state["centre"], "preprocessor/scale": state["scale"]}


def parts_entries(state):
    """The archive entries (``header`` last) of a fitted preset's or
    TabularPipeline's state (``fastbp.tabular._state``)."""
    header = {**_io.file_identity(_io.PARTS_FORMAT_VERSION), "estimator": state["estimator"]}
    params = _json_params(state["params"])
    header["rngs"], keys = _io._encode_rngs(params, None) if "random_state" in params \
        else ({}, [])
    header["params"] = {k: _jsonable(v) for k, v in params.items()}
    header["preprocessor"], arrays = _preprocessor_entries(state["preprocessor"])
    header["members"] = []
    for k, member in enumerate(state["members"]):
        lean = {key: value for key, value in member.items() if key not in _TRAINING_ONLY}
        member_header, member_arrays = _io.mlp_entries(lean)
        header["members"].append(member_header)
        arrays.update({f"members/{k}/{name}": value for name, value in member_arrays.items()})
    if keys:
        arrays["rng_keys"] = np.stack(keys)
    if "attrs" in state:
        header["attrs"] = {k: _jsonable(v) for k, v in state["attrs"].items()}
    if "classes" in state:
        arrays["classes"], header["classes_as_objects"] = _encode_classes(state["classes"])
    for key in ("target_mean", "target_scale"):
        if key in state:
            arrays[key] = np.asarray(state[key], dtype=np.float64)
    arrays["header"] = _io.header_entry(header)
    return arrays


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------

def _read_model(header):
    """An unfitted model with the file's parameters, checked as ``fit``
    checks them, and its parameters."""
    name = header.get("estimator")
    _require(name in _PARTS_MODELS, f"unknown estimator {name!r} for format version 3")
    # fastbp.tabular is imported on first use; importing it registers its classes
    importlib.import_module(f"{__package__}.tabular")
    cls = estimator_class(name)
    params = header.get("params")
    _require(isinstance(params, dict) and set(params) == set(cls._get_param_names()),
             "the estimator parameters are missing or unknown")
    params = {k: _from_json(v) for k, v in params.items()}
    if name not in _PRESETS:  # TabularPipeline: its parts, set from the fitted ones
        return cls(), params
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    try:
        model = cls(**params)
        if name in _PRESETS:
            validate_params(model, model._parameter_constraints)
    except (ValueError, TypeError) as exc:
        raise _BadFile(f"invalid parameters ({exc})") from None
    return model, params


def _read_preprocessor(archive, fields):
    _require(isinstance(fields, dict) and isinstance(fields.get("params"), dict),
             "the preprocessing is malformed")
    state = {key: _from_json(value) for key, value in fields.items()}
    for key in ("centre", "scale"):
        _require(key not in state, "the preprocessing is malformed")
        state[key] = archive.array(f"preprocessor/{key}", (None,), "f", 8)
    return state


def _read_members(archive, headers):
    _require(isinstance(headers, list) and 1 <= len(headers) <= _MAX_MEMBERS,
             "the members are malformed")
    states = []
    for k, member_header in enumerate(headers):
        _require(isinstance(member_header, dict), "the members are malformed")
        # a member is stored as a version 2 file stores an MLP
        member = _io.read_mlp(archive.part(f"members/{k}/"),
                              dict(member_header, version=_io.FORMAT_VERSION))
        states.append(member._to_state())
    return states


def _expected_entries(header, n_members, archive):
    """The entry names a valid file of this header has (every one is read)."""
    names = {"header", "preprocessor/centre", "preprocessor/scale"}
    for k in range(n_members):
        names |= {f"members/{k}/{name}" for name in ("params", "classes")
                  if archive.has(f"members/{k}/{name}")}
    if header.get("rngs"):
        names.add("rng_keys")
    names |= {"classes", "target_mean", "target_scale"} & archive.names()
    return names


def _read_targets(archive, header, model, state):
    if header["estimator"] not in _PRESETS:
        if archive.has("target_mean"):  # a TabularPipeline's target scaling
            _read_target_scaling(archive, state)
        return
    if model._is_classifier():
        classes = archive.array("classes", (None,), "biufU")
        _require(classes.dtype.kind != "f" or np.all(np.isfinite(classes)),
                 "the class labels contain NaN or infinity")
        _require(np.array_equal(np.unique(classes), classes),
                 "the class labels are not sorted and unique")
        if header.get("classes_as_objects") is True:
            classes = classes.astype(object)
        state["classes"] = classes
        return
    _read_target_scaling(archive, state)


def _read_target_scaling(archive, state):
    mean = archive.array("target_mean", (None,), "f", 8)
    state["target_mean"] = mean
    state["target_scale"] = archive.array("target_scale", (mean.size,), "f", 8)


def read_parts(archive, header):
    """The model of a version 3 file (``header`` already read)."""
    model, params = _read_model(header)
    state = {"estimator": header["estimator"], "params": params,
             "preprocessor": _read_preprocessor(archive, header.get("preprocessor")),
             "members": _read_members(archive, header.get("members"))}
    _read_targets(archive, header, model, state)
    if header["estimator"] in _PRESETS:
        attrs = header.get("attrs")
        _require(isinstance(attrs, dict), "the preset's fitted lists are missing")
        state["attrs"] = {k: _from_json(v) for k, v in attrs.items()}
        _io._read_rngs(archive, header, state)
        model.set_params(random_state=state["params"]["random_state"])
    extra = archive.names() - _expected_entries(header, len(state["members"]), archive)
    _require(not extra, f"unexpected entry {min(extra, default='') + '.npy'!r}")
    _require(is_count(len(state["members"]), 1), "the model holds no MLP")
    try:
        model._set_state(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise _BadFile(f"inconsistent parts ({exc})") from None
    return model


_io.register_reader(_io.PARTS_FORMAT_VERSION, read_parts)
