"""Scale out on Dask: train one model out of core, predict in parallel.

Needs the optional extra ``pip install "fastbp[dask]"`` (dask[array] and
distributed). Three patterns:

* **Out-of-core training** of one model: :func:`partial_fit_blocks` streams
  the row blocks of a dask array through ``partial_fit``. Only one block (and
  the next, loading in the background) is in memory at a time; the whole
  array is never materialised.
* **Parallel prediction**: :func:`predict` / :func:`predict_proba` map the
  fitted model over the blocks (``map_blocks``); the result is a lazy dask
  array.
* **Hyper-parameter search on a cluster**: no helper needed. Any
  scikit-learn search runs its fits on a ``distributed`` cluster through
  joblib's dask backend::

      from dask.distributed import Client
      import joblib
      from sklearn.model_selection import GridSearchCV

      client = Client()               # or Client("scheduler-address:8786")
      search = GridSearchCV(fastbp.MLPClassifier(), {"alpha": [1e-4, 1e-2]}, n_jobs=-1)
      with joblib.parallel_backend("dask"):
          search.fit(X, y)

Every function accepts any estimator with ``partial_fit`` / ``predict``
(scikit-learn's included), and every dask scheduler: the local threaded one,
or a ``distributed.Client`` when one is active.
"""

import concurrent.futures
import inspect
import numbers

import numpy as np

from ._compat import check_random_state

__all__ = ["partial_fit_blocks", "predict", "predict_proba"]


def _dask_array():
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ImportError(
            "fastbp.dask needs dask, which is not installed: pip install 'dask[array]' "
            "distributed (or pip install 'fastbp[dask]')."
        ) from None
    return dask, da


def _as_row_blocks(X, da, name="X"):
    """A 2-D dask array with a single chunk along the columns."""
    if hasattr(X, "to_dask_array") and not isinstance(X, da.Array):
        X = X.to_dask_array(lengths=True)  # dask DataFrame: row lengths needed to align y
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} must be a dask array (or dask DataFrame), got {type(X).__name__}; "
            "wrap in-memory data with dask.array.from_array(X, chunks=...)."
        )
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})  # each row block is then one task, every feature at once
    return X


def _aligned(v, X, da, name):
    """``v`` (dask or in-memory, 1-D or 2-D) as a list of per-row-block pieces."""
    if v is None:
        return [None] * X.numblocks[0]
    if hasattr(v, "to_dask_array") and not isinstance(v, da.Array):
        v = v.to_dask_array(lengths=True)
    row_chunks = X.chunks[0]
    if isinstance(v, da.Array):
        if v.chunks[0] != row_chunks:
            if any(np.isnan(c) for c in row_chunks + v.chunks[0]):
                raise ValueError(
                    f"X and {name} have row blocks of unknown or different sizes; compute "
                    "their chunk sizes first (e.g. X.compute_chunk_sizes() or "
                    "to_dask_array(lengths=True))."
                )
            if v.shape[0] != X.shape[0]:
                raise ValueError(f"{name} has {v.shape[0]} rows but X has {X.shape[0]}")
            v = v.rechunk({0: row_chunks})
        if v.ndim == 2 and v.numblocks[1] > 1:
            v = v.rechunk({1: -1})
        return list(v.to_delayed().ravel())
    v = np.asarray(v)
    if any(np.isnan(c) for c in row_chunks):
        raise ValueError(f"X has row blocks of unknown sizes; {name} cannot be split to "
                         "match them. Call X.compute_chunk_sizes() first.")
    if v.shape[0] != X.shape[0]:
        raise ValueError(f"{name} has {v.shape[0]} rows but X has {X.shape[0]}")
    bounds = np.cumsum((0,) + row_chunks)
    return [v[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _is_classifier(model):
    estimator_type = getattr(model, "_estimator_type", None)
    if estimator_type is None:
        try:
            estimator_type = model.__sklearn_tags__().estimator_type
        except Exception:  # not a scikit-learn style estimator
            estimator_type = None
    return estimator_type == "classifier"


def _needs_classes(model):
    """Whether the first ``partial_fit`` of ``model`` needs ``classes=``."""
    parameters = inspect.signature(model.partial_fit).parameters
    accepts_classes = "classes" in parameters or any(
        p.kind == p.VAR_KEYWORD for p in parameters.values())
    return accepts_classes and _is_classifier(model) and not hasattr(model, "classes_")


def _all_classes(y, classes, da):
    """``classes`` as an array, or every class of ``y`` (one pass over a dask y)."""
    if classes is None:
        if isinstance(y, da.Array) and y.ndim == 1:
            classes = da.unique(y).compute()
        elif isinstance(y, da.Array):  # multilabel indicator: the columns are classes
            classes = np.arange(y.shape[1])
        else:
            classes = np.unique(np.asarray(y)) if np.ndim(y) == 1 \
                else np.arange(np.shape(y)[1])
    return np.asarray(classes)


def partial_fit_blocks(model, X, y, *, classes=None, sample_weight=None, epochs=1,
                       shuffle_blocks=True, random_state=None):
    """Train ``model`` out of core: ``partial_fit`` on each row block of X.

    Each epoch visits every row block of ``X`` once (in a random order when
    ``shuffle_blocks``) and calls ``model.partial_fit`` on it, so fastbp runs
    one epoch of mini-batch training over each block. Blocks are computed
    one at a time (the next loads in a background thread while the model
    trains on the current one), so memory holds at most two blocks, never
    the whole array. The model trains in this process; the blocks are
    computed by the active dask scheduler (a ``distributed.Client`` when
    one is active), close to the data.

    Parameters
    ----------
    model : estimator with ``partial_fit``
        E.g. ``fastbp.MLPClassifier(solver='adam')``; trained in place
        (continuing from its current state when already fitted).
    X : dask array of shape (n_samples, n_features), or dask DataFrame
        Row blocks are the units of training; several column blocks are
        merged per row block.
    y : dask array or array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets; a dask array is re-chunked to X's row blocks.
    classes : array-like, default=None
        Every class label, for classifiers not yet fitted. When None, they
        are computed with one pass over ``y`` (``dask.array.unique``).
    sample_weight : dask array or array-like of shape (n_samples,), default=None
        Per-sample weights, split like ``y``.
    epochs : int, default=1
        Passes over the whole of X.
    shuffle_blocks : bool, default=True
        Visit the blocks in a new random order every epoch (samples within
        a block are shuffled by the model itself when ``shuffle=True``).
    random_state : int, RandomState instance or None, default=None
        Seeds the block order.

    Returns
    -------
    model : estimator
        The same object, trained.

    Examples
    --------
    >>> import dask.array as da
    >>> import fastbp
    >>> from fastbp.dask import partial_fit_blocks, predict
    >>> X = da.random.RandomState(0).normal(size=(10_000, 8), chunks=(2_000, 8))
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> clf = fastbp.MLPClassifier((16,), learning_rate_init=0.01, random_state=0)
    >>> clf = partial_fit_blocks(clf, X, y, classes=[0, 1], epochs=3, random_state=0)
    >>> float((predict(clf, X) == y).mean().compute()) > 0.95
    True
    """
    dask, da = _dask_array()
    if not hasattr(model, "partial_fit"):
        raise TypeError(
            f"{type(model).__name__} has no partial_fit (for fastbp estimators, use "
            "solver='sgd' or 'adam')."
        )
    if not isinstance(epochs, numbers.Integral) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    X = _as_row_blocks(X, da)
    x_blocks = list(X.to_delayed().ravel())
    y_blocks = _aligned(y, X, da, "y")
    w_blocks = _aligned(sample_weight, X, da, "sample_weight")

    kwargs = {}
    if _needs_classes(model):
        kwargs["classes"] = _all_classes(y, classes, da)
    rng = check_random_state(random_state)
    schedule = []
    for _ in range(epochs):
        order = np.arange(len(x_blocks))
        if shuffle_blocks:
            rng.shuffle(order)
        schedule.extend(order.tolist())

    def load(i):
        xb, yb, wb = dask.compute(x_blocks[i], y_blocks[i], w_blocks[i])
        return xb, yb, wb

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, schedule[0])
        try:
            for step, _ in enumerate(schedule):
                xb, yb, wb = pending.result()
                if step + 1 < len(schedule):
                    pending = pool.submit(load, schedule[step + 1])
                fit_kwargs = dict(kwargs)
                if wb is not None:
                    fit_kwargs["sample_weight"] = wb
                model.partial_fit(xb, yb, **fit_kwargs)
                kwargs.pop("classes", None)  # only needed on the first call
        finally:
            pending.cancel()
    return model


def _prediction_copy(model):
    """The model without what only training needs: a fastbp estimator also
    carries its optimizer state and early stopping's weights, up to three
    times the weights, which prediction never reads."""
    from ._estimators import _BaseMLP

    return model._prediction_copy() if isinstance(model, _BaseMLP) else model


def _predict_block(block, model, method):
    return getattr(model, method)(block)


def _map_method(model, X, method):
    dask, da = _dask_array()
    if not hasattr(model, method):
        raise AttributeError(f"{type(model).__name__} has no {method}")
    X = _as_row_blocks(X, da)
    # one row of zeros gives the output's dtype and trailing shape cheaply
    probe = np.asarray(getattr(model, method)(np.zeros((1, X.shape[1]), dtype=X.dtype)))
    # one graph node holds the model, shared by every block's task
    model_node = dask.delayed(_prediction_copy(model), pure=True)
    if probe.ndim == 1:
        return X.map_blocks(_predict_block, model_node, method, dtype=probe.dtype,
                            drop_axis=1, meta=np.empty((0,), dtype=probe.dtype))
    return X.map_blocks(_predict_block, model_node, method, dtype=probe.dtype,
                        chunks=(X.chunks[0], probe.shape[1:]),
                        meta=np.empty((0, 0), dtype=probe.dtype))


def predict(model, X):
    """Predict every row block of a dask array in parallel (lazily).

    Parameters
    ----------
    model : fitted estimator
        Any estimator with ``predict``; it is shipped once to the workers.
    X : dask array of shape (n_samples, n_features), or dask DataFrame
        Rows to predict; several column blocks are merged per row block.

    Returns
    -------
    y : dask array of shape (n_samples,) or (n_samples, n_outputs)
        Lazy: call ``.compute()`` (or store it) to run it. Row blocks match
        X's.
    """
    return _map_method(model, X, "predict")


def predict_proba(model, X):
    """Class probabilities for every row block of a dask array, in parallel.

    Parameters
    ----------
    model : fitted classifier
        Any estimator with ``predict_proba``; it is shipped once to the workers.
    X : dask array of shape (n_samples, n_features), or dask DataFrame
        Rows to predict; several column blocks are merged per row block.

    Returns
    -------
    proba : dask array of shape (n_samples, n_classes)
        Lazy, with X's row blocks.
    """
    return _map_method(model, X, "predict_proba")
