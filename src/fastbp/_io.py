"""Save and load models without pickle.

A model file is a zip archive of ``.npy`` entries, as ``numpy.savez`` writes
it (uncompressed):

* ``header``: a UTF-8 JSON document (as a uint8 array) with the format name
  and version, the estimator class, its constructor parameters, the fitted
  attributes that are not arrays, the dtype and the layer sizes;
* ``params``: the flat parameter buffer ``[W0, b0, W1, b1, ...]``;
* ``classes``: the class labels (classifiers; numbers or unicode strings);
* ``opt_state1`` / ``opt_state2``, ``best_params`` and ``rng_keys`` when
  present: the optimizer's moments, the early-stopping weights and the
  random generators' state, so that training continues (``partial_fit``,
  ``warm_start``) exactly where it stopped.

Loading never unpickles or executes anything from the file. Every entry is
checked before anything is allocated: only the entries above, stored
uncompressed, no larger than the file; each array's dtype and shape are
compared with what the JSON header implies before its data is read (a
tampered header cannot make the loader allocate more than the file holds);
the JSON header is checked field by field against the estimator's rules
(parameters, layer sizes, activations, classes, optimizer state, finite
numbers). Anything else raises ``ValueError`` naming the file and the problem.
"""

import io
import json
import numbers
import os
import re
import zipfile

import numpy as np

from ._state import (
    FITTED_LISTS,
    FITTED_SCALARS,
    OPTIMIZER_FIELDS as _OPTIMIZER_FIELDS,
    OPTIMIZER_FIELDS_0_1,
    OPTIMIZER_FLOATS,
    OPTIMIZER_SCHEDULES,
    OPTIMIZER_SOLVERS,
    PARAMETERS_SINCE_0_1_0,
    REQUIRED_SCALARS,
    Optimizer,
    StateMixin,
    estimator_class,
    is_count,
    is_number,
    output_activation,
    parameter_count,
)

FORMAT_NAME = "fastbp-model"
# 2: the training options (dropout, weight decay, ... : constructor parameters)
# and the optimizer's weight_decay, max_grad_norm, warmup and total_steps.
# Version 1 (fastbp 0.1.0) files load with those at their defaults.
FORMAT_VERSION = 2
# 3: models made of parts (the tabular presets, a TabularPipeline): a
# preprocessing and MLPs, each MLP stored as a version 2 file stores it
# (``_io_parts``). A file is written in the lowest version that describes it,
# so MLP files stay version 2 (readable by the fastbp releases that read 2).
PARTS_FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

__all__ = ["save_model", "write_entries", "load", "read_header", "file_identity", "read_mlp",
           "mlp_entries", "header_entry", "register_reader"]

_LABEL_TYPES = ("binary", "multiclass", "multilabel-indicator")
_ENTRIES = ("header", "params", "classes", "opt_state1", "opt_state2", "best_params",
            "rng_keys")
# the entries of a version 3 file besides those: the preprocessing's arrays, a
# regression preset's target scaling, and each MLP's entries under "members/<k>/"
_PARTS_ENTRIES = ("preprocessor/centre", "preprocessor/scale", "target_mean", "target_scale")
_MEMBER_ENTRY = re.compile(r"members/(0|[1-9][0-9]{0,5})/(" + "|".join(_ENTRIES[1:]) + ")")
# the JSON header holds parameters, scalars, the loss curve and feature names
_MAX_HEADER_BYTES = 256 * 2**20
# format version -> reader(archive, header), for the versions other modules define
_VERSION_READERS = {}
_MT19937_KEYS = 624


# ---------------------------------------------------------------------------
# JSON values
# ---------------------------------------------------------------------------

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
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):  # class_weight: keys may be numbers, which JSON cannot key
        return {"dict": [[_jsonable(k), _jsonable(v)] for k, v in value.items()]}
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"float"} and \
            value["float"] in ("nan", "inf", "-inf"):
        return float(value["float"])
    if isinstance(value, dict) and set(value) == {"dict"}:
        pairs = value["dict"]
        _require(isinstance(pairs, list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], (str, int, float))
            for p in pairs), "a stored mapping is malformed")
        return {_from_json(k): _from_json(v) for k, v in pairs}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _rng_state(rng):
    """(header part, keys array) of a RandomState's MT19937 state."""
    kind, keys, pos, has_gauss, cached = rng.get_state()
    return {"pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": _jsonable(cached)}, np.asarray(keys, dtype=np.uint32)


# ---------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------

def _encode_classes(classes):
    """Classes as an array numpy can store without pickle, and whether they
    were Python objects (restored as such)."""
    classes = np.asarray(classes)
    if classes.dtype.kind != "O":
        if classes.dtype.kind not in "biufU":
            raise TypeError(f"class labels of dtype {classes.dtype} cannot be saved without "
                            "pickle; use numbers or strings as labels")
        return classes, False
    values = classes.tolist()
    if all(isinstance(c, str) for c in values):
        return np.asarray(values, dtype=str), True
    if all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in values):
        return np.asarray(values, dtype=np.int64), True
    raise TypeError("class labels that mix types (or are not numbers or strings) cannot be "
                    "saved without pickle; use numbers or strings as labels")


def save_model(model, path):
    """Write ``model`` to ``path`` (see the module docstring for the format)."""
    if not isinstance(model, StateMixin):
        raise TypeError(f"can only save fastbp estimators, got {type(model).__name__}")
    model._check_fitted()
    write_entries(_file_entries(model._to_state()), path)


def write_entries(arrays, path):
    """Write the archive entries ``arrays`` to ``path`` (atomically)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    # write next to the target, then rename: a crash never leaves half a file
    tmp = f"{os.fspath(path)}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(buf.getbuffer())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def file_identity(version):
    """The header fields every file starts with: the format, its version and
    the fastbp that wrote it (files of fastbp 0.1.0 lack the last)."""
    from . import __version__

    return {"format": FORMAT_NAME, "version": version, "fastbp_version": __version__}


def _file_entries(state):
    """The archive entries (``header`` last) of a fitted MLP's state."""
    header, arrays = mlp_entries(state)
    header = {**file_identity(FORMAT_VERSION), **header}
    arrays["header"] = header_entry(header)
    return arrays


def header_entry(header):
    """The ``header`` entry: the JSON document as a uint8 array."""
    return np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)


def mlp_entries(state):
    """``(header, arrays)`` of a fitted MLP's state: the JSON fields (without
    the format and version) and the array entries (without ``header``)."""
    network = state["network"]
    params = dict(state["params"])
    arrays = {"params": network["params"]}
    if params.get("callbacks") is not None:
        params["callbacks"] = None  # code, not data: set callbacks again after load
    header = {
        "estimator": state["estimator"],
        "dtype": network["params"].dtype.name,
        "sizes": list(network["sizes"]),
        "hidden_activation": network["hidden_activation"],
        "output_activation": network["output_activation"],
        "attrs": {k: _jsonable(v) for k, v in state["attrs"].items()},
        "lists": {k: _jsonable(v) for k, v in state["lists"].items()},
    }
    header["rngs"], keys = _encode_rngs(params, state.get("fit_random_state"))
    if keys:
        arrays["rng_keys"] = np.stack(keys)
    header["params"] = {k: _jsonable(v) for k, v in params.items()}
    if "targets" in state:
        arrays["classes"], header["classes_as_objects"] = _encode_classes(
            state["targets"]["classes"])
        header["y_type"] = state["targets"]["y_type"]
    if "feature_names_in_" in state:
        header["feature_names_in_"] = [str(n) for n in state["feature_names_in_"]]
    if "optimizer" in state:
        optimizer = state["optimizer"]
        header["optimizer"] = {k: _jsonable(optimizer[k]) for k in _OPTIMIZER_FIELDS}
        arrays["opt_state1"] = optimizer["state1"]
        arrays["opt_state2"] = optimizer["state2"]
    if "best_params" in state:
        arrays["best_params"] = state["best_params"]
    return header, arrays


def _encode_rngs(params, fit_rng):
    """(header part, key arrays) of the random generators: the parameter
    (when it is a RandomState; ``params`` then stores None) and the one the
    last fit drew from, so that continued training draws the same."""
    rngs, keys = {}, []
    param_rng = params["random_state"]
    if isinstance(param_rng, np.random.RandomState):
        params["random_state"] = None
        rngs["random_state"], k = _rng_state(param_rng)
        keys.append(k)
    if fit_rng is not None:
        if fit_rng is param_rng:
            rngs["_random_state"] = "random_state"
        elif fit_rng is np.random.mtrand._rand:
            rngs["_random_state"] = "global"
        else:
            rngs["_random_state"], k = _rng_state(fit_rng)
            keys.append(k)
    return rngs, keys


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------

class _BadFile(Exception):
    """Internal: the reason a file is rejected (turned into ValueError)."""


def _require(condition, why):
    if not condition:
        raise _BadFile(why)


class _Archive:
    """The entries of a model file, each checked before it is read."""

    def __init__(self, path):
        file_size = os.path.getsize(path)
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
            raise _BadFile(f"it is not a zip/npz archive ({exc})") from None
        self.infos = {}
        total = 0
        for info in self.zip.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else None
            _require(name in _ENTRIES or name in _PARTS_ENTRIES
                     or (name is not None and _MEMBER_ENTRY.fullmatch(name)),
                     f"unexpected entry {info.filename!r}")
            _require(name not in self.infos, f"entry {info.filename!r} appears twice")
            _require(not info.flag_bits & 0x1, f"entry {info.filename!r} is encrypted")
            _require(info.compress_type == zipfile.ZIP_STORED,
                     f"entry {info.filename!r} is compressed; model files store their "
                     "arrays uncompressed")
            total += info.file_size
            self.infos[name] = info
        _require(total <= file_size, "its entries declare more data than the file holds")

    def close(self):
        self.zip.close()

    def has(self, name):
        return name in self.infos

    def names(self):
        return set(self.infos)

    def part(self, prefix):
        """The entries under ``prefix`` (e.g. ``"members/0/"``), read as
        this archive's own."""
        return _ArchivePart(self, prefix)

    def array(self, name, shape, kinds, itemsize=None):
        """Read entry ``name``; its dtype kind must be in ``kinds`` (and its
        item size ``itemsize`` when given) and its shape ``shape`` (None
        entries: any length). Checked before the data is read."""
        _require(name in self.infos, f"the entry {name!r} is missing")
        info = self.infos[name]
        with self.zip.open(info) as fp:
            try:
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    got_shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
                elif version == (2, 0):
                    got_shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
                else:
                    raise _BadFile(f"entry {name!r} has .npy version {version}")
            except (ValueError, EOFError, SyntaxError, TypeError) as exc:
                raise _BadFile(f"entry {name!r} is not a valid .npy array ({exc})") from None
            _require(not dtype.hasobject, f"entry {name!r} holds Python objects; model files "
                     "never do (loading them would need pickle)")
            _require(dtype.kind in kinds and dtype.fields is None and dtype.subdtype is None
                     and (itemsize is None or dtype.itemsize == itemsize),
                     f"entry {name!r} has dtype {dtype}")
            _require(len(got_shape) == len(shape) and all(
                want is None or got == want for got, want in zip(got_shape, shape)),
                f"entry {name!r} has shape {got_shape}, expected "
                f"{tuple('n' if s is None else s for s in shape)}")
            count = 1
            for s in got_shape:
                count *= s
            nbytes = count * dtype.itemsize
            _require(nbytes <= info.file_size,
                     f"entry {name!r} declares {nbytes} bytes of data but holds fewer")
            data = fp.read(nbytes)
            _require(len(data) == nbytes, f"entry {name!r} is truncated")
            _require(fp.read(1) == b"", f"entry {name!r} has trailing data")
        array = np.frombuffer(data, dtype=dtype)
        if fortran:
            array = array.reshape(got_shape[::-1]).T
        return np.array(array.reshape(got_shape), dtype=dtype.newbyteorder("="), order="C")


class _ArchivePart:
    """The entries of an archive under a prefix (one MLP of a version 3 file)."""

    def __init__(self, archive, prefix):
        self.archive = archive
        self.prefix = prefix

    def has(self, name):
        return self.archive.has(self.prefix + name)

    def array(self, name, shape, kinds, itemsize=None):
        return self.archive.array(self.prefix + name, shape, kinds, itemsize)


def _bad(path, why):
    return ValueError(f"{os.fspath(path)!s} is not a valid fastbp model file: {why}")


def load(path):
    """Load a model saved with ``model.save(path)``.

    Nothing in the file is unpickled or executed, and every part of it is
    checked (entries, sizes, dtypes, shapes, parameters, finiteness) before
    it is used, so files from untrusted sources are safe to load: the worst
    a bad file can do is raise ``ValueError``.

    Parameters
    ----------
    path : str or path-like
        A file written by ``save``.

    Returns
    -------
    model : MLP, MLPClassifier or MLPRegressor
        The saved estimator with its fitted state: it predicts exactly as
        the saved one did, and ``partial_fit`` or ``fit`` with
        ``warm_start=True`` continue training exactly as the saved one would
        have.

    Raises
    ------
    ValueError
        If the file is not a fastbp model file of this format version, or is
        truncated, damaged or inconsistent.
    OSError
        If the file cannot be opened (missing, a directory, no permission).

    Notes
    -----
    ``pickle`` and ``joblib`` also save and load fastbp models (as
    scikit-learn users expect), but unpickling runs code chosen by whoever
    wrote the file: never unpickle a model from a source you do not trust.
    Use ``save`` / ``load`` to exchange models.
    """
    try:
        archive = _Archive(path)
    except _BadFile as exc:
        raise _bad(path, str(exc)) from None
    try:
        return _load(archive)
    except _BadFile as exc:
        raise _bad(path, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a damaged file may fail anywhere in zipfile
        raise _bad(path, f"the archive is damaged ({type(exc).__name__}: {exc})") from None
    finally:
        archive.close()


def register_reader(version, reader):
    """``reader(archive, header)`` loads the files of format ``version``
    (``_io_parts`` registers version 3 when the package is imported)."""
    _VERSION_READERS[version] = reader


def _load(archive):
    header = _read_header(archive)
    reader = _VERSION_READERS.get(header["version"])
    if reader is not None:
        return reader(archive, header)
    extra = archive.names() - set(_ENTRIES)
    _require(not extra, f"unexpected entry {min(extra, default='') + '.npy'!r}")
    return read_mlp(archive, header)


def read_mlp(archive, header):
    """The MLP described by ``header`` (format version in ``header['version']``)
    and the entries of ``archive`` (an archive or a part of one)."""
    model, params, dtype = _estimator_of(header)
    network = _read_network(archive, header, model, dtype)
    state = {"estimator": header["estimator"], "params": params, "network": network}
    _read_fitted_attributes(header, network, state)
    if model._is_classifier():
        state["targets"] = _read_targets(archive, header, network)
    n_params = network["params"].size
    if archive.has("best_params"):
        best = archive.array("best_params", (n_params,), "f", dtype.itemsize)
        _require(np.all(np.isfinite(best)), "best_params contain NaN or infinity")
        state["best_params"] = best
    if "optimizer" in header:
        state["optimizer"] = _read_optimizer(archive, header["optimizer"], n_params, dtype,
                                             header["version"])
    _read_rngs(archive, header, state)
    try:
        model._set_state(state)
    except (TypeError, ValueError) as exc:
        raise _BadFile(f"inconsistent network ({exc})") from None
    return model


def read_header(path):
    """The checked JSON header of the model file ``path`` (a dict), without
    loading the model; ValueError as :func:`load` raises it."""
    try:
        archive = _Archive(path)
    except _BadFile as exc:
        raise _bad(path, str(exc)) from None
    try:
        return _read_header(archive)
    except _BadFile as exc:
        raise _bad(path, str(exc)) from None
    finally:
        archive.close()


def _read_header(archive):
    raw = archive.array("header", (None,), "u", itemsize=1)
    _require(raw.size <= _MAX_HEADER_BYTES, "the header is too large")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _BadFile(f"the header is not valid JSON ({type(exc).__name__})") from None
    _require(isinstance(header, dict) and header.get("format") == FORMAT_NAME,
             "it is not a fastbp model")
    version = header.get("version")
    _require(is_count(version) and version in READABLE_VERSIONS,
             f"format version {version!r}; this fastbp reads versions "
             f"{', '.join(map(str, READABLE_VERSIONS))}. "
             "Save the model again with a fastbp that reads it.")
    return header


def _estimator_of(header):
    """(an unfitted estimator with the file's parameters, its parameters,
    the dtype), the parameters checked as ``fit`` checks them."""
    cls = estimator_class(header.get("estimator"))
    _require(cls is not None and issubclass(cls, StateMixin),
             f"unknown estimator {header.get('estimator')!r}")
    dtype_name = header.get("dtype")
    _require(dtype_name in ("float32", "float64"), f"unsupported dtype {dtype_name!r}")
    params = header.get("params")
    expected = set(cls._get_param_names())
    if header["version"] == 1:  # fastbp 0.1.0: the parameters it had
        expected -= set(PARAMETERS_SINCE_0_1_0)
    _require(isinstance(params, dict) and set(params) == expected,
             "the estimator parameters are missing or unknown")
    params = {k: _from_json(v) for k, v in params.items()}
    if isinstance(params["hidden_layer_sizes"], list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    model = cls(**params)
    try:
        model._validate_params()
    except (ValueError, TypeError) as exc:
        raise _BadFile(f"invalid parameters ({exc})") from None
    return model, params, np.dtype(dtype_name)


def _read_network(archive, header, model, dtype):
    sizes = header.get("sizes")
    _require(isinstance(sizes, list) and 2 <= len(sizes) <= 10_000
             and all(is_count(s, 1) for s in sizes), "the layer sizes are malformed")
    _require(sizes[1:-1] == model._hidden_sizes(),
             "the layer sizes do not match hidden_layer_sizes")
    hidden_act, out_act = header.get("hidden_activation"), header.get("output_activation")
    _require(hidden_act == model.activation, "the hidden activation does not match")
    loss = model._loss_name()
    if loss == "log_loss":
        _require(out_act in {output_activation(loss, t) for t in _LABEL_TYPES},
                 f"output activation {out_act!r}")
    else:
        _require(out_act == output_activation(loss),
                 f"output activation {out_act!r} does not match the loss")
    # shape checked before reading: a header declaring a huge network cannot
    # make this allocate more than the file holds
    flat = archive.array("params", (parameter_count(sizes),), "f", dtype.itemsize)
    _require(np.all(np.isfinite(flat)), "the parameters contain NaN or infinity")
    return {"sizes": sizes, "hidden_activation": hidden_act, "output_activation": out_act,
            "params": flat}


def _read_fitted_attributes(header, network, state):
    """The fitted scalars and lists, and the feature names, into ``state``."""
    sizes, out_act = network["sizes"], network["output_activation"]
    attrs = header.get("attrs", {})
    lists = header.get("lists", {})
    _require(isinstance(attrs, dict) and set(attrs) <= set(FITTED_SCALARS)
             and isinstance(lists, dict) and set(lists) <= set(FITTED_LISTS),
             "unknown fitted attributes")
    attrs = {k: _from_json(v) for k, v in attrs.items()}
    for key in REQUIRED_SCALARS:
        _require(key in attrs, f"the fitted attribute {key} is missing")
    for key, value in attrs.items():
        _require(FITTED_SCALARS[key](value, sizes, out_act),
                 f"the fitted attribute {key} = {value!r} is invalid")
    state["attrs"] = attrs
    state["lists"] = {}
    for key, value in lists.items():
        value = _from_json(value)
        # NaN is a valid entry (a score or loss that could not be computed)
        _require(value is None or (isinstance(value, list)
                                   and all(is_number(v, finite=False) for v in value)),
                 f"the fitted attribute {key} is invalid")
        state["lists"][key] = None if value is None else [float(v) for v in value]
    if "feature_names_in_" in header:
        names = header["feature_names_in_"]
        _require(isinstance(names, list) and len(names) == sizes[0]
                 and all(isinstance(n, str) for n in names), "the feature names are invalid")
        state["feature_names_in_"] = np.asarray(names, dtype=object)


def _read_targets(archive, header, network):
    """The classes and target type of a classifier."""
    sizes, out_act = network["sizes"], network["output_activation"]
    y_type = header.get("y_type")
    _require(y_type in _LABEL_TYPES, f"unknown target type {y_type!r}")
    n_classes = {"binary": 2, "multiclass": sizes[-1],
                 "multilabel-indicator": sizes[-1]}[y_type]
    _require((y_type == "binary") == (sizes[-1] == 1) and
             (y_type != "multiclass" or n_classes >= 3) and
             out_act == output_activation("log_loss", y_type),
             "the target type does not match the network")
    classes = archive.array("classes", (n_classes,), "biufU")
    _require(classes.dtype.kind != "f" or np.all(np.isfinite(classes)),
             "the class labels contain NaN or infinity")
    _require(np.array_equal(np.unique(classes), classes),
             "the class labels are not sorted and unique")
    if y_type == "multilabel-indicator":
        _require(np.array_equal(classes, np.arange(n_classes)),
                 "multilabel classes must be 0..n-1")
    if header.get("classes_as_objects") is True:
        classes = classes.astype(object)
    return {"classes": classes, "y_type": y_type}


def _read_optimizer(archive, fields, n_params, dtype, version):
    names = OPTIMIZER_FIELDS_0_1 if version == 1 else _OPTIMIZER_FIELDS
    _require(isinstance(fields, dict) and set(fields) == set(names),
             "the optimizer state is malformed")
    if version == 1:  # fastbp 0.1.0: no weight decay, clipping, warm-up or step schedule
        fields = dict(fields, weight_decay=0.0, max_grad_norm=0.0, warmup=0.0, total_steps=0)
    _require(fields["solver"] in OPTIMIZER_SOLVERS and fields["lr_schedule"] in
             OPTIMIZER_SCHEDULES and isinstance(fields["nesterov"], bool)
             and is_count(fields["t"]) and is_count(fields["total_steps"])
             and all(is_number(fields[k]) for k in OPTIMIZER_FLOATS)
             and fields["weight_decay"] >= 0 and fields["max_grad_norm"] >= 0
             and 0 <= fields["warmup"] < 1,
             "the optimizer state is invalid")
    state1 = archive.array("opt_state1", (n_params,), "f", dtype.itemsize)
    state2 = archive.array("opt_state2", (Optimizer.state2_size(fields["solver"], n_params),),
                           "f", dtype.itemsize)
    _require(np.all(np.isfinite(state1)) and np.all(np.isfinite(state2)),
             "the optimizer state contains NaN or infinity")
    optimizer = {k: fields[k] for k in ("solver", "lr_schedule", "nesterov", "t",
                                        "total_steps")}
    optimizer.update({k: float(fields[k]) for k in OPTIMIZER_FLOATS})
    optimizer.update(state1=state1, state2=state2)
    return optimizer


def _read_rngs(archive, header, state):
    """The random generators: the ``random_state`` parameter when it was a
    RandomState, and the one the last fit drew from."""
    rngs = header.get("rngs", {})
    _require(isinstance(rngs, dict) and set(rngs) <= {"random_state", "_random_state"},
             "the random state is malformed")
    stored = [k for k in ("random_state", "_random_state") if isinstance(rngs.get(k), dict)]
    keys = archive.array("rng_keys", (len(stored), _MT19937_KEYS), "u", 4) if stored else None
    generators = {}
    for i, name in enumerate(stored):
        rng_state = rngs[name]
        _require(set(rng_state) == {"pos", "has_gauss", "cached_gaussian"}
                 and is_count(rng_state["pos"], 0, _MT19937_KEYS)
                 and rng_state["has_gauss"] in (0, 1)
                 and is_number(_from_json(rng_state["cached_gaussian"])),
                 "the random state is invalid")
        rng = np.random.RandomState()
        rng.set_state(("MT19937", keys[i], rng_state["pos"], rng_state["has_gauss"],
                       float(_from_json(rng_state["cached_gaussian"]))))
        generators[name] = rng
    if "random_state" in generators:
        state["params"]["random_state"] = generators["random_state"]
    if rngs.get("_random_state") == "random_state":
        _require("random_state" in stored, "the random state is invalid")
        state["fit_random_state"] = state["params"]["random_state"]
    elif rngs.get("_random_state") == "global":
        state["fit_random_state"] = np.random.mtrand._rand
    else:
        _require("_random_state" not in rngs or "_random_state" in stored,
                 "the random state is invalid")
        if "_random_state" in generators:
            state["fit_random_state"] = generators["_random_state"]
