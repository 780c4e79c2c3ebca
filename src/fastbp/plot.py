"""Plots of training, drawn with matplotlib (an optional dependency:
``pip install "fastbp[plot]"``).

Importing this module does not import matplotlib; calling a function does,
and raises ``ImportError`` with the install command when it is missing.
"""

__all__ = ["learning_curve"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "fastbp.plot needs matplotlib, which is not installed: pip install matplotlib "
            "(or pip install 'fastbp[plot]')."
        ) from None
    return plt


def _curves(model):
    """(loss, validation_loss, validation_score, score_name) from a fitted
    estimator or a History."""
    from .callbacks import History

    if isinstance(model, History):
        if not model.loss:
            raise ValueError("This History recorded no epoch yet: pass it in an estimator's "
                             "callbacks and fit the estimator first.")
        val_loss = None if all(v is None for v in model.validation_loss) \
            else model.validation_loss
        val_score = None if all(v is None for v in model.validation_score) \
            else model.validation_score
        return model.loss, val_loss, val_score, "validation score"
    if not hasattr(model, "coefs_"):
        raise ValueError(
            f"learning_curve needs a fitted estimator or a fastbp.callbacks.History; this "
            f"{type(model).__name__} is not fitted yet. Call fit first."
        )
    loss = getattr(model, "loss_curve_", None)
    if loss is None:
        raise ValueError(
            f"This {type(model).__name__} has no loss_curve_: only the 'sgd' and 'adam' "
            "solvers record one. For solver='lbfgs', record the loss per iteration with "
            "callbacks=fastbp.callbacks.History() and pass that History instead."
        )
    name = "validation accuracy" if hasattr(model, "classes_") else "validation R²"
    return (loss, getattr(model, "validation_loss_curve_", None),
            getattr(model, "validation_scores_", None), name)


def learning_curve(model, ax=None):
    """Draw the training loss per epoch and, with early stopping, the
    validation loss and score.

    The training loss (``loss_curve_``) and the validation loss
    (``validation_loss_curve_``) share the left axis; the validation score
    (``validation_scores_``: accuracy or R²) is drawn dashed on a twin right
    axis, with a dotted vertical line at the best epoch, whose weights an
    early-stopped model keeps.

    Parameters
    ----------
    model : fitted fastbp or scikit-learn MLP estimator, or fastbp.callbacks.History
        An estimator trained with ``solver='sgd'`` or ``'adam'``, or the
        :class:`~fastbp.callbacks.History` a fit recorded (any solver).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure and Axes when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes holding the loss curves (the score, when drawn, is on
        ``ax.right_ax``, a twin Axes).

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    ValueError
        When the model is not fitted or recorded no loss curve.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from fastbp import MLPClassifier
    >>> from fastbp.plot import learning_curve
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 4)); y = (X[:, 0] > 0).astype(int)
    >>> clf = MLPClassifier((16,), early_stopping=True, random_state=0).fit(X, y)
    >>> ax = learning_curve(clf)
    >>> [line.get_label() for line in ax.get_lines()][:2]
    ['training loss', 'validation loss']
    """
    plt = _pyplot()
    loss, val_loss, val_score, score_name = _curves(model)
    if ax is None:
        _, ax = plt.subplots()
    epochs = range(1, len(loss) + 1)
    handles = ax.plot(epochs, loss, color="C0", label="training loss")
    if val_loss is not None:
        handles += ax.plot(range(1, len(val_loss) + 1), val_loss, color="C1",
                           label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if val_score is not None:
        right = ax.twinx()
        handles += right.plot(range(1, len(val_score) + 1), val_score, color="C2",
                              linestyle="--", label=score_name)
        right.set_ylabel(score_name)
        best = max(range(len(val_score)), key=lambda i: val_score[i]) + 1
        handles.append(ax.axvline(best, color="0.5", linestyle=":",
                                  label=f"best epoch ({best})"))
        ax.right_ax = right
    ax.legend(handles=handles, labels=[h.get_label() for h in handles], loc="best")
    ax.set_title("Learning curve")
    return ax
