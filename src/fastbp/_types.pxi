cdef extern from "_simd.h":
    pass


# Activation codes shared with Python (_network.ACTIVATION_CODES).
cdef enum:
    ACT_IDENTITY = 0
    ACT_LOGISTIC = 1
    ACT_TANH = 2
    ACT_RELU = 3
    ACT_LEAKY_RELU = 4
    ACT_SOFTMAX = 5
    ACT_EXP = 6

# Optimizer codes.
cdef enum:
    OPT_SGD = 0
    OPT_ADAM = 1


ACTIVATION_CODES = {
    "identity": ACT_IDENTITY,
    "logistic": ACT_LOGISTIC,
    "tanh": ACT_TANH,
    "relu": ACT_RELU,
    "leaky_relu": ACT_LEAKY_RELU,
    "softmax": ACT_SOFTMAX,
    "exp": ACT_EXP,
}

# Slope of leaky_relu for negative inputs (PyTorch's default).
LEAKY_SLOPE = 0.01
cdef double _LEAKY_SLOPE = 0.01

# Rows per chunk for full-batch passes (predict, loss_and_gradients, lbfgs):
# bounds the workspace whatever the number of samples.
DEFAULT_CHUNK_ROWS = 512

# Parameters an optimizer step processes per block (the gradient block stays in L1).
cdef enum:
    UPDATE_BLOCK = 1024

# How often (nanoseconds of work) a training loop takes the GIL to check for
# Ctrl-C.
cdef long long SIGNAL_CHECK_NS = 20_000_000


# ---------------------------------------------------------------------------
# Network description
# ---------------------------------------------------------------------------

cdef struct Net:
    int n_layers            # number of weight layers L (= len(coefs_))
    Py_ssize_t *sizes       # L + 1 widths: n_features, hidden..., n_outputs
    Py_ssize_t *off_w       # offset of W_i in the flat buffer
    Py_ssize_t *off_b       # offset of b_i in the flat buffer
    Py_ssize_t n_params
    Py_ssize_t n_weights    # entries of all the W_i: multiply-adds per row of a forward pass
    Py_ssize_t max_width    # widest layer after the input
    int hidden_act
    int out_act


cdef struct TunerState:
    double ns_per_row[2]      # estimated time per sample: [0] one thread, [1] n threads
    double last_rate[2]       # the latest measurement of each
    int n_measured[2]         # measurements of each so far (counted up to 2)
    long long segments        # segments run so far
    long long next_explore    # segment at which to try the slower choice again
    long long interval        # segments between tries (doubles while they lose)


# ---------------------------------------------------------------------------
# Input rows: dense C-contiguous or CSR, addressed through an optional row map
# ---------------------------------------------------------------------------

cdef struct Input:
    const void *dense           # (n_samples, n_features) C-contiguous, or NULL
    const void *csr_data        # CSR values, or NULL for dense
    const Py_ssize_t *csr_indices
    const Py_ssize_t *csr_indptr
    Py_ssize_t n_features
