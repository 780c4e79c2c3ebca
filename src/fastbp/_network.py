"""Layer sizes, the flat parameter buffer and its per-layer views, initialisation."""

import numpy as np

from ._engine import NetSpec
from ._engine_calls import BUFFER_ALIGNMENT, aligned_copy, aligned_empty

__all__ = ["Network", "parameter_count"]


def parameter_count(sizes):
    """Weights and biases of a dense network with these layer sizes."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


class Network:
    """A dense network: its ``NetSpec`` and one flat parameter buffer.

    ``params`` is laid out ``[W0, b0, W1, b1, ...]``; ``coefs[i]`` (shape
    ``(n_in, n_out)``) and ``intercepts[i]`` are numpy views into it, so the
    engine updates them in place and an optimizer step is one loop over one
    buffer. The buffer starts on a cache line (``_engine_calls.aligned_empty``);
    a given one that does not is copied onto one.
    """

    def __init__(self, sizes, hidden_activation, output_activation, dtype, params=None):
        self.spec = NetSpec(sizes, hidden_activation, output_activation)
        self.dtype = np.dtype(dtype)
        if params is None:
            params = aligned_empty(self.spec.n_params, self.dtype, zero=True)
        elif params.shape != (self.spec.n_params,) or params.dtype != self.dtype:
            raise ValueError("parameter buffer does not match the network")
        elif params.ctypes.data % BUFFER_ALIGNMENT:
            params = aligned_copy(params)  # a loaded or unpickled buffer, copied once
        self.params = params
        self.coefs = [params[a:b].reshape(shape) for a, b, shape in self.spec.weight_slices()]
        self.intercepts = [params[a:b] for a, b in self.spec.bias_slices()]
        total = sum(c.size + i.size for c, i in zip(self.coefs, self.intercepts))
        assert total == params.size, "layer views must tile the parameter buffer"

    @property
    def sizes(self):
        return list(self.spec.sizes)

    def init_glorot(self, random_state, hidden_activation):
        """scikit-learn's initialisation, draw for draw: per layer, weights then
        intercepts ~ U(-b, b) with b = sqrt(factor / (fan_in + fan_out)),
        factor 2 for logistic hidden units and 6 otherwise."""
        factor = 2.0 if hidden_activation == "logistic" else 6.0
        sizes = self.sizes
        for i in range(len(sizes) - 1):
            fan_in, fan_out = sizes[i], sizes[i + 1]
            bound = np.sqrt(factor / (fan_in + fan_out))
            self.coefs[i][...] = random_state.uniform(-bound, bound, (fan_in, fan_out))
            self.intercepts[i][...] = random_state.uniform(-bound, bound, fan_out)

    def sync_from(self, coefs, intercepts):
        """Copy user-assigned ``coefs_`` / ``intercepts_`` into the buffer when
        they are no longer the buffer's own views (e.g. ``model.coefs_ = [...]``)."""
        if not isinstance(coefs, list) or not isinstance(intercepts, list):
            raise TypeError("coefs_ and intercepts_ must be lists of arrays")
        if len(coefs) != len(self.coefs) or len(intercepts) != len(self.intercepts):
            raise ValueError(
                f"coefs_ and intercepts_ must have {len(self.coefs)} entries (one per layer), "
                f"got {len(coefs)} and {len(intercepts)}"
            )
        for kind, user, own in (("coefs_", coefs, self.coefs),
                                ("intercepts_", intercepts, self.intercepts)):
            for i, (u, o) in enumerate(zip(user, own)):
                if u is o:
                    continue
                u = np.asarray(u)
                if u.shape != o.shape:
                    raise ValueError(f"{kind}[{i}] has shape {u.shape}, expected {o.shape}")
                if not np.all(np.isfinite(u)):
                    raise ValueError(f"{kind}[{i}] contains NaN or infinity")
                o[...] = u
                user[i] = o

    def __reduce__(self):
        # pickle the buffer only; the per-layer views are rebuilt on load
        return (Network, (self.sizes, self.spec.hidden_activation,
                          self.spec.output_activation, self.dtype, self.params))

    def copy(self):
        return Network(self.sizes, self.spec.hidden_activation, self.spec.output_activation,
                       self.dtype, aligned_copy(self.params))
