"""The demo behind ``python -m fastbp``: the seed's kind of network on two moons.

A 2-16-1 network (ReLU hidden layer, sigmoid output, binary cross-entropy),
trained by backpropagation with SGD + Nesterov momentum on generated
two-moons data, with per-epoch progress, held-out accuracy and timing.
"""

import time

import numpy as np


def two_moons(n_samples, noise=0.1, random_state=0):
    """Two interleaving half circles in 2-D with Gaussian noise; labels 0/1."""
    rng = np.random.RandomState(random_state)
    t = rng.uniform(0, np.pi, n_samples)
    labels = rng.randint(0, 2, n_samples)
    x = np.where(labels == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(labels == 0, np.sin(t), 0.5 - np.sin(t))
    X = np.column_stack([x, y]) + rng.normal(0, noise, (n_samples, 2))
    return X, labels


def run(n_samples=4000, hidden=16, epochs=60, batch_size=32, random_state=0, out=print):
    """Train and evaluate the demo network; returns the fitted model and the
    test accuracy."""
    from . import MLP

    X, y = two_moons(n_samples, random_state=random_state)
    n_train = int(0.75 * n_samples)
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    # A RandomState instance (not an int) keeps one random stream across the
    # partial_fit calls: initial weights, then a fresh shuffle every epoch, the
    # same draws as one fit(max_iter=epochs) call.
    model = MLP(hidden_layer_sizes=(hidden,), activation="relu", solver="sgd",
                learning_rate_init=0.01, momentum=0.9, batch_size=batch_size,
                random_state=np.random.RandomState(random_state))
    out(f"fastbp demo: 2-{hidden}-1 network (ReLU -> sigmoid, binary cross-entropy), "
        f"SGD + Nesterov momentum, batch {batch_size}")
    out(f"two moons: {n_train} training and {n_samples - n_train} test samples\n")
    total = 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.partial_fit(X_train, y_train, classes=[0, 1])  # one epoch per call
        total += time.perf_counter() - start
        if epoch == 1 or epoch % 10 == 0 or epoch == epochs:
            acc = model.score(X_train, y_train)
            out(f"epoch {epoch:3d}  loss {model.loss_:.5f}  train accuracy {acc:.3f}")
    test_acc = model.score(X_test, y_test)
    out(f"\ntest accuracy {test_acc:.3f}; {epochs} epochs of training took {total * 1e3:.1f} ms "
        f"({epochs * n_train / total / 1e6:.2f} M samples/s)")
    x1 = X_test[:1]
    model.predict(x1)                        # the first call sets up the fast path
    start = time.perf_counter()
    for _ in range(1000):
        model.predict(x1)
    out(f"one-sample predict: {(time.perf_counter() - start) * 1e3:.1f} us "
        "(mean of 1000 calls)")
    return model, test_acc
