"""scikit-learn's own estimator checks on fastbp's estimators."""

import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastbp  # noqa: E402


def _estimators():
    # the settings scikit-learn's own test suite uses for its MLPs
    common = dict(max_iter=100, random_state=0)
    return [
        fastbp.MLPClassifier(**common),
        fastbp.MLPRegressor(**common),
        fastbp.MLP(**common),
        fastbp.MLP(loss="squared_error", **common),
    ]


# Checks that fail, with the reason; everything else must pass.
EXPECTED_FAILURES = {}


@parametrize_with_checks(_estimators(), expected_failed_checks=lambda est: EXPECTED_FAILURES)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
