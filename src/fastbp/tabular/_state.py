"""A fitted tabular preset or TabularPipeline as plain data, and back: what
their model files (``fastbp._io_parts``) hold.

The state::

    estimator     'TabularMLPClassifier', 'TabularMLPRegressor' or 'TabularPipeline'
    params        the constructor parameters (presets: get_params(); a
                  TabularPipeline: 'mlp' and 'preprocessor', each None or
                  'fitted': the fitted part's settings, copied back on load;
                  and 'scale_target')
    preprocessor  the fitted TabularPreprocessor's state (its to_state())
    members       the fitted MLPs' states (fastbp._state), one for a TabularPipeline
    -- presets only (and the target scaling of a TabularPipeline) --
    attrs         best_epochs_, validation_scores_ (per member; n_iter_ is the members')
    classes       the class labels (classifier)
    target_mean, target_scale   float64 arrays, one value per output (regressor;
                  a TabularPipeline's when it standardised the target)

:func:`set_state` checks that the parts fit together (the members read the
preprocessing's output, the classes and outputs agree) and raises
``ValueError`` naming what does not.
"""

from typing import NamedTuple

import numpy as np

from .._estimators import MLP, MLPClassifier, MLPRegressor
from .._state import estimator_class, is_count, is_number
from ._periodic import periodic_numbers
from ._preprocessor import TabularPreprocessor

__all__ = ["to_state", "set_state", "PRESET_ATTRIBUTES"]

# the presets' fitted lists besides the parts and the targets
PRESET_ATTRIBUTES = ("best_epochs_", "validation_scores_")


class _KeptEpoch(NamedTuple):
    """What a preset keeps of a member's BestEpoch."""

    best_epoch: int
    scores: list


def to_state(model):
    """``model`` (a fitted preset or TabularPipeline) as plain data."""
    name = type(model).__name__
    if name == "TabularPipeline":
        params = {key: None if value is None else "fitted"
                  for key, value in model.get_params().items() if key != "scale_target"}
        state = {"estimator": name, "params": {**params, "scale_target": model.scale_target},
                 "preprocessor": model.preprocessor_.to_state(),
                 "members": [model.mlp_._to_state()]}
        if "target_mean_" in model.__dict__:
            state["target_mean"] = model.target_mean_
            state["target_scale"] = model.target_scale_
        return state
    state = {"estimator": name, "params": model.get_params(),
             "preprocessor": model.preprocessor_.to_state(),
             "members": [member._to_state() for member in model.estimators_],
             "attrs": {"best_epochs_": [int(e) for e in model.best_epochs_],
                       "validation_scores_": [[float(s) for s in scores]
                                              for scores in model.validation_scores_]}}
    if model._is_classifier():
        state["classes"] = model.classes_
    else:
        state["target_mean"] = model.target_mean_
        state["target_scale"] = model.target_scale_
    return state


def _require(condition, message):
    if not condition:
        raise ValueError(message)


def _member(state, expected_class):
    """An MLP from its state; it must be an ``expected_class``."""
    cls = estimator_class(state.get("estimator"))
    _require(cls is expected_class or (expected_class is None and cls in
                                       (MLP, MLPClassifier, MLPRegressor)),
             f"a member is a {state.get('estimator')!r}, expected "
             f"{'an MLP' if expected_class is None else expected_class.__name__}")
    member = cls(**state["params"])
    member._set_state(state)
    return member


def _check_members_read(preprocessor, members, periodic_features=0):
    """The members read the preprocessing's output (a preset's: with
    ``periodic_features`` per numeric column appended, as ``member_inputs``)."""
    expected = (preprocessor.n_features_out_
                + periodic_numbers(preprocessor, periodic_features) * periodic_features)
    for member in members:
        _require(member.n_features_in_ == expected,
                 f"a member reads {member.n_features_in_} features, the preprocessing "
                 f"(and periodic features) give {expected}")


def _set_pipeline_state(model, state, preprocessor, members):
    _require(len(members) == 1, f"a TabularPipeline holds one MLP, got {len(members)}")
    mlp = members[0]
    _check_members_read(preprocessor, members)
    given = state["params"]
    _require(isinstance(given, dict) and set(given) == {"mlp", "preprocessor", "scale_target"}
             and given["mlp"] in (None, "fitted") and given["preprocessor"] in (None, "fitted")
             and given["scale_target"] in (True, False),
             "a TabularPipeline's parameters are mlp and preprocessor (None or 'fitted') and "
             "scale_target (a bool)")
    model.set_params(scale_target=given["scale_target"])
    if given["mlp"] is not None:
        model.set_params(mlp=type(mlp)(**mlp.get_params()))
    if given["preprocessor"] is not None:
        model.set_params(preprocessor=TabularPreprocessor(**preprocessor.get_params()))
    scaled = "target_mean" in state
    _require(not scaled or not mlp._is_classifier(), "a classifier has no target scaling")
    fitted = _target_scaling(state, [mlp]) if scaled else {}
    model._commit(preprocessor, mlp)
    model.__dict__.update(fitted)


def _preset_targets(model, state, members):
    """The classes_ or target_mean_ / target_scale_ of a preset, checked
    against its members."""
    if model._is_classifier():
        classes = np.asarray(state["classes"])
        _require(classes.ndim == 1 and classes.size >= 2, "a classifier needs 2 classes or more")
        for member in members:
            codes = np.asarray(member.classes_)
            _require(codes.dtype.kind in "iu" and codes.min() >= 0
                     and codes.max() < classes.size,
                     "a member's classes are not codes of the preset's classes")
        return {"classes_": state["classes"]}
    return _target_scaling(state, members)


def _target_scaling(state, members):
    """target_mean_ and target_scale_, checked against the members' outputs."""
    mean, scale = state["target_mean"], state["target_scale"]
    _require(mean.shape == scale.shape and mean.ndim == 1 and np.all(np.isfinite(mean))
             and np.all(np.isfinite(scale)) and np.all(scale > 0),
             "the target scaling is invalid")
    for member in members:
        _require(member.n_outputs_ == mean.size, f"a member has {member.n_outputs_} outputs, "
                                                 f"the target {mean.size}")
    return {"target_mean_": mean, "target_scale_": scale}


def _kept_epochs(state, members):
    """The members' best epochs and held-out scores, checked."""
    attrs = state["attrs"]
    _require(isinstance(attrs, dict) and set(attrs) == set(PRESET_ATTRIBUTES),
             f"the preset's fitted lists must be {PRESET_ATTRIBUTES}")
    epochs, scores = attrs["best_epochs_"], attrs["validation_scores_"]
    _require(isinstance(epochs, list) and isinstance(scores, list)
             and len(epochs) == len(scores) == len(members)
             and all(is_count(e, 0, m.n_iter_) for e, m in zip(epochs, members))
             and all(isinstance(s, list) and all(is_number(v, finite=False) for v in s)
                     for s in scores),
             "the preset's best epochs or held-out scores are invalid")
    return [_KeptEpoch(e, [float(v) for v in s]) for e, s in zip(epochs, scores)]


def set_state(model, state):
    """Give ``model`` (an unfitted preset or TabularPipeline with the
    state's parameters) the fitted parts of ``state``; ValueError names any
    inconsistency."""
    preprocessor = TabularPreprocessor.from_state(state["preprocessor"])
    _require(preprocessor._is_fitted(), "the preprocessing is not fitted")
    members = state["members"]
    _require(isinstance(members, list) and members, "the model holds no MLP")
    if type(model).__name__ == "TabularPipeline":
        _set_pipeline_state(model, state, preprocessor, [_member(s, None) for s in members])
        return
    members = [_member(s, model._inner_class) for s in members]
    _check_members_read(preprocessor, members, model.periodic_features)
    fitted = _preset_targets(model, state, members)
    model._commit(preprocessor, fitted, list(zip(members, _kept_epochs(state, members))))
