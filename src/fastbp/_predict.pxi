# Inference: the chunked forward pass, its thread job, and the small-input
# predict path.
#
# Notes
# -----
# * ``_forward_chunk`` takes a chunk of rows through the network with two
#   ping-pong buffers (``_predict_ws_size``), so memory is bounded whatever
#   the number of rows.
# * ``forward`` (_engine.pyx) shares the chunks between the pool's threads:
#   each takes the next free chunk (``PredictJob``), with its own buffers; a
#   thread the OS pauses holds up one chunk at most.
# * ``Predictor`` serves ``predict`` on small dense inputs with one call from
#   Python: no general validation, shapes, dtype and finiteness still
#   checked, its buffers allocated once. It is built from the estimator's
#   network and reads the estimator's ``__dict__`` to check that the model
#   has not changed (``_same_model``).

cdef extern from "numpy/arrayobject.h":
    # numpy's own declaration makes ``out`` an ndarray, so None is passed as an
    # array; take() without an output array needs NULL
    object _take_from "PyArray_TakeFrom" (cnp.ndarray a, object indices, int axis,
                                          void *out, cnp.NPY_CLIPMODE mode)


cdef inline Py_ssize_t _predict_ws_size(const Net *net, Py_ssize_t chunk_rows) noexcept nogil:
    # two ping-pong buffers of chunk_rows rows of the widest layer
    return 2 * chunk_rows * net.max_width


# ---------------------------------------------------------------------------
# The chunked forward pass, on one thread or shared between the pool's
# ---------------------------------------------------------------------------

cdef void _forward_chunk(const Net *net, const Input *X, const floating *params,
                         Py_ssize_t start, Py_ssize_t B, Py_ssize_t chunk_rows,
                         floating *out, floating *work) noexcept nogil:
    """Output rows ``start:start + B`` (B <= chunk_rows) into ``out``, with
    ``work`` (2 * chunk_rows * max_width) as ping-pong buffers."""
    cdef Py_ssize_t nf = net.sizes[0]
    cdef int i, L = net.n_layers
    cdef floating *cur
    cdef floating *nxt
    cdef floating *dst
    cdef floating *ping = work
    cdef floating *pong = work + chunk_rows * net.max_width
    cdef const floating *A0
    A0 = (<const floating *> X.dense) + start * nf if X.csr_data == NULL else NULL
    dst = out + start * net.sizes[L] if L == 1 else ping
    first_layer_product(net, X, params, A0, NULL, start, B, dst, 0, net.sizes[1])
    bias_activation(dst, B, net.sizes[1], net.sizes[1], params + net.off_b[0],
                    net.out_act if L == 1 else net.hidden_act)
    cur = dst
    for i in range(1, L):
        if i == L - 1:
            nxt = out + start * net.sizes[L]
        else:
            nxt = pong if cur == ping else ping
        gemm_rm(False, False, <int> B, <int> net.sizes[i + 1], <int> net.sizes[i],
                <floating> 1.0, cur, <int> net.sizes[i], params + net.off_w[i],
                <int> net.sizes[i + 1], <floating> 0.0, nxt, <int> net.sizes[i + 1])
        bias_activation(nxt, B, net.sizes[i + 1], net.sizes[i + 1], params + net.off_b[i],
                        net.out_act if i == L - 1 else net.hidden_act)
        cur = nxt


cdef struct PredictJob:
    const Net *net
    const Input *inp
    const void *params
    Py_ssize_t n
    Py_ssize_t chunk_rows
    void *out
    void *work[FB_MAX_THREADS]   # each thread's ping-pong buffers
    long next_chunk              # the next chunk nobody has taken (atomic)
    int stop                     # a signal handler raised


cdef void _predict_body(PredictJob *job, int tid, int nt, floating *params) noexcept nogil:
    """Take free chunks until none is left; thread 0 checks for Ctrl-C
    between its chunks."""
    cdef long c
    cdef Py_ssize_t start, B
    cdef long long last_check = fb_now_ns()
    while not job.stop:
        c = fb_fetch_add(&job.next_chunk)
        start = c * job.chunk_rows
        if start >= job.n:
            break
        B = job.n - start if job.n - start < job.chunk_rows else job.chunk_rows
        _forward_chunk(job.net, job.inp, params, start, B, job.chunk_rows,
                       <floating *> job.out, <floating *> job.work[tid])
        if tid == 0 and _check_signals(&last_check):
            job.stop = 1


cdef void _predict_task_f(void *arg, int tid, int nt) noexcept nogil:
    cdef PredictJob *job = <PredictJob *> arg
    _predict_body(job, tid, nt, <float *> job.params)


cdef void _predict_task_d(void *arg, int tid, int nt) noexcept nogil:
    cdef PredictJob *job = <PredictJob *> arg
    _predict_body(job, tid, nt, <double *> job.params)


cdef int _run_predict_job(PredictJob *job, int n_threads, bint is_float) except -1:
    # the job on n_threads with scipy's OpenBLAS held at one thread; Ctrl-C raises
    with _BlasSerial():
        with nogil:
            if is_float:
                fb_pool_run(_predict_task_f, <void *> job, n_threads)
            else:
                fb_pool_run(_predict_task_d, <void *> job, n_threads)
        if job.stop:  # raised inside the block (see train_epoch)
            _raise_pending()
    return 0


# ---------------------------------------------------------------------------
# predict for small inputs: one call from Python to the kernel
# ---------------------------------------------------------------------------

cdef enum:
    PRED_REGRESSION = 0
    PRED_BINARY = 1
    PRED_MULTICLASS = 2


cdef bint _predict_rows(const Net *net, const floating *x, Py_ssize_t n,
                        const floating *params, floating *out,
                        floating *work) noexcept nogil:
    """Forward ``n`` dense rows into ``out`` as one chunk; False (nothing
    computed) when X holds NaN or infinity."""
    cdef Input inp
    cdef Py_ssize_t j, total = n * net.sizes[0]
    cdef floating bad = 0
    for j in range(total):
        bad += x[j] - x[j]        # 0 for finite values, nan for nan/inf
    if bad != 0 or bad != bad:
        return False
    memset(&inp, 0, sizeof(Input))
    inp.dense = x
    _forward_chunk(net, &inp, params, 0, n, n, out, work)
    return True


cdef void _output_labels(const floating *P, Py_ssize_t n, Py_ssize_t n_out, bint binary,
                         cnp.npy_intp *idx) noexcept nogil:
    """Class positions from output activations: p > 0.5 for one logistic
    output, else the first largest (as argmax)."""
    cdef Py_ssize_t r, j, best
    for r in range(n):
        if binary:
            idx[r] = 1 if P[r * n_out] > 0.5 else 0
        else:
            best = 0
            for j in range(1, n_out):
                if P[r * n_out + j] > P[r * n_out + best]:
                    best = j
            idx[r] = best


@cython.auto_pickle(False)
cdef class Predictor:
    """``predict`` for small dense inputs, without the general validation.

    Given a fitted network (its ``NetSpec``, parameter buffer and the
    per-layer views into it), the class labels for classifiers and the kind
    ('regression', 'binary' or 'multiclass'). ``predict(X, coefs, intercepts,
    classes)`` takes the estimator's current ``coefs_``, ``intercepts_`` and
    ``classes_`` and returns the prediction, or None when the fast path does
    not apply and the caller must take the general one: X not a 2-D
    C-contiguous ndarray of the model's dtype with 1..``max_rows`` rows, lists
    that are no longer the buffer's own views or other classes (the user
    assigned new ones), or non-finite values (the general path then raises
    the usual error). Shapes, dtype and finiteness are still checked; the
    workspace is allocated once. The caller drops the Predictor when the
    estimator is fitted again (feature names may change).
    """
    cdef NetSpec spec
    cdef object params
    cdef object classes
    cdef tuple coefs
    cdef tuple intercepts
    cdef object out
    cdef object work
    cdef cnp.dtype dtype
    cdef int kind
    cdef readonly Py_ssize_t max_rows
    cdef Py_ssize_t max_layer_work

    def __cinit__(self, NetSpec spec not None, cnp.ndarray params not None, coefs, intercepts,
                  classes, str kind, Py_ssize_t max_rows=64):
        if params.ndim != 1 or params.shape[0] != spec.net.n_params or \
                params.dtype not in (np.float32, np.float64) or not params.flags.c_contiguous:
            raise ValueError("params must be the network's contiguous float32/float64 "
                             f"parameter buffer of {spec.net.n_params} values")
        self.spec = spec
        self.params = params
        self.dtype = params.dtype
        self.coefs = tuple(coefs)
        self.intercepts = tuple(intercepts)
        if len(self.coefs) != spec.net.n_layers or len(self.intercepts) != spec.net.n_layers:
            raise ValueError(f"coefs and intercepts need {spec.net.n_layers} arrays each")
        self.classes = classes
        self.kind = {"regression": PRED_REGRESSION, "binary": PRED_BINARY,
                     "multiclass": PRED_MULTICLASS}[kind]
        if self.kind != PRED_REGRESSION and classes is None:
            raise ValueError("a classifier's Predictor needs its classes")
        self.max_rows = max_rows
        self.max_layer_work = max(self.spec.sizes[i] * self.spec.sizes[i + 1]
                                  for i in range(self.spec.n_layers))
        self.out = np.empty((max_rows, self.spec.net.sizes[self.spec.net.n_layers]),
                            dtype=self.dtype)
        self.work = np.empty(self.spec.predict_workspace_size(max_rows), dtype=self.dtype)

    cdef bint _forward(self, cnp.ndarray A, Py_ssize_t n):
        if self.dtype.type_num == cnp.NPY_FLOAT32:
            return _predict_rows(&self.spec.net, <const float *> cnp.PyArray_DATA(A), n,
                                 <const float *> cnp.PyArray_DATA(<cnp.ndarray> self.params),
                                 <float *> cnp.PyArray_DATA(<cnp.ndarray> self.out),
                                 <float *> cnp.PyArray_DATA(<cnp.ndarray> self.work))
        return _predict_rows(&self.spec.net, <const double *> cnp.PyArray_DATA(A), n,
                             <const double *> cnp.PyArray_DATA(<cnp.ndarray> self.params),
                             <double *> cnp.PyArray_DATA(<cnp.ndarray> self.out),
                             <double *> cnp.PyArray_DATA(<cnp.ndarray> self.work))

    cdef bint _same_model(self, object coefs, object intercepts, object classes):
        # the estimator still holds the buffer's own views and the same classes
        cdef Py_ssize_t i, L = len(self.coefs)
        if self.kind != PRED_REGRESSION and classes is not self.classes:
            return False
        if type(coefs) is not list or type(intercepts) is not list:
            return False
        if len(<list> coefs) != L or len(<list> intercepts) != L:
            return False
        for i in range(L):
            if (<list> coefs)[i] is not self.coefs[i]:
                return False
            if (<list> intercepts)[i] is not self.intercepts[i]:
                return False
        return True

    def predict(self, X, coefs, intercepts, classes):
        cdef cnp.ndarray A
        cdef cnp.ndarray idx
        cdef cnp.ndarray res
        cdef cnp.npy_intp dims[2]
        cdef Py_ssize_t n, nf, n_out
        cdef bint ok = False
        if type(X) is not np.ndarray:
            return None
        A = <cnp.ndarray> X
        if (cnp.PyArray_NDIM(A) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(A)
                or <object> cnp.PyArray_DESCR(A) is not self.dtype):
            return None
        n = cnp.PyArray_DIM(A, 0)
        nf = cnp.PyArray_DIM(A, 1)
        if n < 1 or n > self.max_rows or nf != self.spec.net.sizes[0]:
            return None
        if not self._same_model(coefs, intercepts, classes):
            return None
        n_out = self.spec.net.sizes[self.spec.net.n_layers]
        if n * self.max_layer_work >= BLAS_THREADED_WORK:
            # products OpenBLAS would thread: keep it on one thread (its idle
            # workers would otherwise spin beside the next fit)
            with _BlasSerial():
                ok = self._forward(A, n)
        else:
            ok = self._forward(A, n)
        if not ok:
            return None
        if self.kind == PRED_REGRESSION:
            dims[0] = n
            dims[1] = n_out
            res = cnp.PyArray_EMPTY(1 if n_out == 1 else 2, dims, self.dtype.type_num, 0)
            memcpy(cnp.PyArray_DATA(res), cnp.PyArray_DATA(<cnp.ndarray> self.out),
                   n * n_out * self.dtype.itemsize)
            return res
        dims[0] = n
        idx = cnp.PyArray_EMPTY(1, dims, cnp.NPY_INTP, 0)
        if self.dtype.type_num == cnp.NPY_FLOAT32:
            _output_labels(<float *> cnp.PyArray_DATA(<cnp.ndarray> self.out), n, n_out,
                           self.kind == PRED_BINARY, <cnp.npy_intp *> cnp.PyArray_DATA(idx))
        else:
            _output_labels(<double *> cnp.PyArray_DATA(<cnp.ndarray> self.out), n, n_out,
                           self.kind == PRED_BINARY, <cnp.npy_intp *> cnp.PyArray_DATA(idx))
        return _take_from(<cnp.ndarray> self.classes, idx, 0, NULL, cnp.NPY_RAISE)
