"""The seed's worked examples, and scikit-learn's, reproduced exactly."""

import numpy as np
import pytest
from conftest import with_weights

import fastbp


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_seed_221_relu_sigmoid_bce_gradients_match_chain_rule():
    # The seed's network: x in R^2 -> W1 (2x2) + b1 -> ReLU -> W2 (1x2) + b2 ->
    # sigmoid -> binary cross-entropy. The seed writes W x with column vectors;
    # fastbp (like scikit-learn) stores coefs_[i] = W^T and computes x @ W^T.
    x = np.array([[1.0, -2.0]])
    y = np.array([1])
    W1 = np.array([[0.5, -0.3], [0.2, 0.8]])      # seed's W[1], rows = hidden units
    b1 = np.array([0.1, -0.1])
    W2 = np.array([[0.7, -1.2]])                  # seed's W[2]
    b2 = np.array([0.05])

    # forward, as the seed writes it
    z1 = W1 @ x[0] + b1
    a1 = np.maximum(z1, 0)
    z2 = W2 @ a1 + b2
    a2 = sigmoid(z2)
    L = -(y[0] * np.log(a2[0]) + (1 - y[0]) * np.log(1 - a2[0]))
    # backward by the chain rule
    dz2 = a2 - y
    dW2 = np.outer(dz2, a1)
    db2 = dz2
    da1 = W2.T @ dz2
    dz1 = da1 * (z1 > 0)
    dW1 = np.outer(dz1, x[0])
    db1 = dz1
    assert z1[0] > 0 and z1[1] < 0, "the example should exercise both ReLU branches"

    X2 = np.vstack([x, [[0.0, 1.0]]])
    model = with_weights(fastbp.MLP(hidden_layer_sizes=(2,), activation="relu", alpha=0.0),
                         X2, [1, 0], [W1.T, W2.T], [b1, b2])
    loss, coef_grads, intercept_grads = model.loss_and_gradients(x, y)
    assert model.out_activation_ == "logistic"
    np.testing.assert_allclose(loss, L, rtol=1e-12, atol=0)
    np.testing.assert_allclose(coef_grads[1], dW2.T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(intercept_grads[1], db2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(coef_grads[0], dW1.T, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(intercept_grads[0], db1, rtol=1e-12, atol=1e-15)
    # the dead unit gets exactly zero gradient, the live one does not
    assert np.all(coef_grads[0][:, 1] == 0) and np.all(coef_grads[0][:, 0] != 0)
    np.testing.assert_allclose(model.predict_proba(x)[0, 1], a2[0], rtol=1e-12)

    # one gradient-descent step w <- w - eta dL/dw is what sgd (no momentum) does
    step = fastbp.MLP(hidden_layer_sizes=(2,), activation="relu", alpha=0.0, solver="sgd",
                      learning_rate_init=0.5, momentum=0.0)
    step = with_weights(step, X2, [1, 0], [W1.T, W2.T], [b1, b2])
    step.partial_fit(x, y)
    np.testing.assert_allclose(step.coefs_[0], W1.T - 0.5 * dW1.T, rtol=1e-12)
    np.testing.assert_allclose(step.coefs_[1], W2.T - 0.5 * dW2.T, rtol=1e-12)
    np.testing.assert_allclose(step.intercepts_[0], b1 - 0.5 * db1, rtol=1e-12)
    np.testing.assert_allclose(step.intercepts_[1], b2 - 0.5 * db2, rtol=1e-12)


def test_seed_scalar_chain_rule_by_backprop_matches_hand_and_finite_differences():
    # The seed's scalar graph (section 3.2): d = 2b, e = a + d, L = c * e, with
    # dL/dc = e, dL/da = dL/de * de/da = c, dL/db = dL/de * de/dd * dd/db = 2c.
    # (b = -0.5 so that e, and with it dL/dc, is not zero; every value is
    # exact in binary.)
    a, b, c = 3.0, -0.5, 0.25

    def L(a, b, c):
        return c * (a + 2 * b)

    e = a + 2 * b
    by_hand = {"a": c, "b": 2 * c, "c": e}

    # fastbp computes the same graph as a network: input (1, 2), one identity
    # hidden unit with weights (a, b) gives e = a*1 + b*2, an identity output
    # with weight c gives L; the target L - 1 makes the squared error's
    # derivative dloss/dL exactly 1, so backprop's gradients are dL/da, dL/db
    # and dL/dc themselves
    x = np.array([[1.0, 2.0]])
    model = with_weights(fastbp.MLPRegressor(hidden_layer_sizes=(1,), activation="identity",
                                             alpha=0.0),
                         np.vstack([x, x]), [0.0, 1.0], [[[a], [b]], [[c]]], [[0.0], [0.0]])
    np.testing.assert_array_equal(model.predict(x), [L(a, b, c)])
    loss, coef_grads, intercept_grads = model.loss_and_gradients(x, [L(a, b, c) - 1.0])
    assert loss == 0.5
    by_backprop = {"a": coef_grads[0][0, 0], "b": coef_grads[0][1, 0], "c": coef_grads[1][0, 0]}
    assert by_backprop == by_hand
    np.testing.assert_array_equal(intercept_grads[0], [c])     # de/d(bias) = 1
    np.testing.assert_array_equal(intercept_grads[1], [1.0])

    h = 1e-6
    numeric = {
        "a": (L(a + h, b, c) - L(a - h, b, c)) / (2 * h),
        "b": (L(a, b + h, c) - L(a, b - h, c)) / (2 * h),
        "c": (L(a, b, c + h) - L(a, b, c - h)) / (2 * h),
    }
    for name in by_hand:
        assert by_backprop[name] == pytest.approx(numeric[name], rel=1e-8)


def _sklearn_worked_example(cls):
    # scikit-learn's test_mlp.py::test_fit: 3 inputs, 2 logistic hidden units,
    # alpha 0.1, learning rate 0.1, no momentum, one sample of class 0.
    X = np.array([[0.6, 0.8, 0.7]])
    y = np.array([0])
    est = cls(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic",
              random_state=1, max_iter=1, hidden_layer_sizes=2, momentum=0)
    est = with_weights(est, np.vstack([X, X]), [0, 1],
                       [[[0.1, 0.2], [0.3, 0.1], [0.5, 0]], [[0.1], [0.2]]],
                       [[0.1, 0.1], [1.0]])
    est.partial_fit(X, y, classes=[0, 1])
    return est


def test_sklearn_worked_example_one_sgd_step_by_hand():
    est = _sklearn_worked_example(fastbp.MLPClassifier)
    # the example's arithmetic, exactly
    X = np.array([0.6, 0.8, 0.7])
    W1 = np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]])
    b1 = np.array([0.1, 0.1])
    W2 = np.array([[0.1], [0.2]])
    b2 = np.array([1.0])
    h = sigmoid(X @ W1 + b1)
    o = sigmoid(h @ W2 + b2)
    d2 = o - 0
    d1 = (W2 @ d2) * h * (1 - h)
    W1_new = W1 - 0.1 * (np.outer(X, d1) + 0.1 * W1)
    W2_new = W2 - 0.1 * (np.outer(h, d2) + 0.1 * W2)
    np.testing.assert_allclose(est.coefs_[0], W1_new, rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.coefs_[1], W2_new, rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.intercepts_[0], b1 - 0.1 * d1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.intercepts_[1], b2 - 0.1 * d2, rtol=0, atol=1e-12)
    # and the values scikit-learn's test documents (to its 3 decimals)
    np.testing.assert_almost_equal(est.coefs_[1], [[0.04706], [0.154089]], decimal=3)
    np.testing.assert_almost_equal(est.intercepts_[0], [0.098333, 0.09626], decimal=3)
    np.testing.assert_almost_equal(est.intercepts_[1], [0.9235], decimal=3)
    np.testing.assert_almost_equal(est.predict_proba(X[None])[0, 1], 0.739, decimal=3)


def test_sklearn_worked_example_matches_sklearn():
    sk = pytest.importorskip("sklearn.neural_network")
    ours = _sklearn_worked_example(fastbp.MLPClassifier)
    theirs = _sklearn_worked_example(sk.MLPClassifier)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
