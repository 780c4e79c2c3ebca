# Types every unit of the engine shares.
#
# Notes
# -----
# * ``Net`` is a network's shape and the layout of its flat parameter buffer
#   ``[W0, b0, W1, b1, ...]`` (``W_i`` row-major (n_in, n_out), as
#   scikit-learn's ``coefs_[i]``); ``NetSpec`` (_network.pxi) owns one.
# * ``Input`` is the rows a kernel reads: dense C-contiguous or CSR, each
#   kernel taking a row map (``rows``) or a first row (``row0``) beside it.
# * ``FB_MAX_THREADS`` (_threads.h) is the one cap on threads: the pool's
#   size and every per-thread array.
# * Each registry keeps its own codes beside its kernels (activation codes in
#   _activations.pxi, optimizer kinds in _optim.pxi, predict kinds in
#   _predict.pxi), so that an addition is made in one unit.

cdef extern from "_threads.h":
    enum: FB_MAX_THREADS


cdef struct Net:
    int n_layers            # number of weight layers L (= len(coefs_))
    Py_ssize_t *sizes       # L + 1 widths: n_features, hidden..., n_outputs
    Py_ssize_t *off_w       # offset of W_i in the flat buffer
    Py_ssize_t *off_b       # offset of b_i in the flat buffer
    Py_ssize_t n_params
    Py_ssize_t n_weights    # entries of all the W_i: multiply-adds per row of a forward pass
    Py_ssize_t max_width    # widest layer after the input
    int hidden_act          # activation codes (_activations.pxi)
    int out_act


cdef struct Input:
    const void *dense               # (n_samples, n_features) C-contiguous, or NULL
    const void *csr_data            # CSR values, or NULL for dense input
    const Py_ssize_t *csr_indices
    const Py_ssize_t *csr_indptr


# defined in _epoch.pxi (the thread tuner); each NetSpec holds one
cdef class ThreadTuner

# Rows per chunk for full-batch passes (predict, loss_and_gradients, lbfgs):
# bounds the workspace whatever the number of samples.
DEFAULT_CHUNK_ROWS = 512
