# Inference: the chunked forward pass, its thread job, and the small-input
# predict path.
#
# Notes
# -----
# * ``_forward_chunk`` takes a chunk of rows through the network with two
#   ping-pong buffers (``_predict_ws_size``), so memory is bounded whatever
#   the number of rows; its products are ``predict_gemm``'s (_gemm.pxi).
# * ``forward`` (_engine.pyx) shares the chunks between the pool's threads:
#   each takes the next free chunk (``PredictJob``), with its own buffers; a
#   thread the OS pauses holds up one chunk at most, and a worker that has
#   not woken up by the time the caller runs out of chunks is not waited for
#   (a shared pool job, _threads.h). One chunk of dense rows (up to 512) has
#   no second chunk to share: its large layers are split by columns instead
#   (``split_forward``, _predict_split.pxi), as the Predictor's are.
# * ``Predictor`` serves ``predict``, ``predict_proba`` and
#   ``predict_log_proba`` on small dense inputs with one call from Python: no
#   general validation, shapes, dtype and finiteness still checked, its
#   buffers allocated once. It is given the estimator's network, views and
#   classes explicitly and checks on each call that the model has not
#   changed (``_same_model``). Small work holds the GIL in the shared buffers
#   (concurrent calls take turns; a GIL handoff costs more than the work);
#   large work runs without it in buffers of its own (``_outputs``). Logs
#   are numpy's own loops (``_log_in_place``), so they equal ``np.log``.

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

cdef inline bint _by_own(const OwnLayer *own, int i, bint full) noexcept nogil:
    # layer i's product of a full chunk (or of the last, shorter one) is the own kernel's
    return own != NULL and (own[i].use_full if full else own[i].use_last)


cdef void _forward_chunk(const Net *net, const Input *X, const floating *params,
                         Py_ssize_t start, Py_ssize_t B, Py_ssize_t chunk_rows,
                         floating *out, floating *work, const OwnLayer *own,
                         const floating *packed) noexcept nogil:
    """Output rows ``start:start + B`` (B <= chunk_rows) into ``out``, with
    ``work`` (2 * chunk_rows * max_width) as ping-pong buffers. ``own`` (or
    NULL): the layers whose products the own kernel takes (_own_gemm.pxi),
    for full chunks and for the last, shorter one, their weights in
    ``packed``."""
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
    if _by_own(own, 0, B == chunk_rows):
        own_product(B, net.sizes[1], nf, A0, nf, &own[0], packed, dst, net.sizes[1])
    else:
        first_layer_product(net, X, params, A0, NULL, start, B, dst, 0, net.sizes[1], False)
    bias_activation(dst, B, net.sizes[1], net.sizes[1], params + net.off_b[0],
                    net.out_act if L == 1 else net.hidden_act)
    cur = dst
    for i in range(1, L):
        if i == L - 1:
            nxt = out + start * net.sizes[L]
        else:
            nxt = pong if cur == ping else ping
        if _by_own(own, i, B == chunk_rows):
            own_product(B, net.sizes[i + 1], net.sizes[i], cur, net.sizes[i], &own[i], packed,
                        nxt, net.sizes[i + 1])
        else:
            predict_gemm(<int> B, <int> net.sizes[i + 1], <int> net.sizes[i], cur,
                         <int> net.sizes[i], params + net.off_w[i], <int> net.sizes[i + 1], nxt,
                         <int> net.sizes[i + 1])
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
    bint check_finite            # dense rows: look for NaN and infinity first
    int nonfinite                # a chunk held one: the job stopped
    const OwnLayer *own          # the own kernel's products (NULL: the BLAS's)
    void *packed[FB_MAX_THREADS] # each thread's packed weights for them


cdef void _predict_body(PredictJob *job, int tid, int nt, floating *params) noexcept nogil:
    """Take free chunks until none is left; thread 0 checks for Ctrl-C
    between its chunks."""
    cdef long c
    cdef Py_ssize_t start, B
    cdef long long last_check = fb_now_ns()
    cdef bint packed = False
    while not job.stop and not job.nonfinite:
        c = fb_fetch_add(&job.next_chunk)
        start = c * job.chunk_rows
        if start >= job.n:
            break
        B = job.n - start if job.n - start < job.chunk_rows else job.chunk_rows
        if job.check_finite and not _rows_finite(
                (<const floating *> job.inp.dense) + start * job.net.sizes[0],
                B * job.net.sizes[0]):
            job.nonfinite = 1
            break
        if job.own != NULL and not packed:
            # this thread's copy of the weights the own kernel reads, once it has a chunk
            pack_own_layers(job.net, params, job.own, <floating *> job.packed[tid])
            packed = True
        _forward_chunk(job.net, job.inp, params, start, B, job.chunk_rows,
                       <floating *> job.out, <floating *> job.work[tid], job.own,
                       <floating *> job.packed[tid])
        if tid == 0 and _check_signals(&last_check):
            job.stop = 1


cdef void _predict_task_f(void *arg, int tid, int nt) noexcept nogil:
    cdef PredictJob *job = <PredictJob *> arg
    _predict_body(job, tid, nt, <float *> job.params)


cdef void _predict_task_d(void *arg, int tid, int nt) noexcept nogil:
    cdef PredictJob *job = <PredictJob *> arg
    _predict_body(job, tid, nt, <double *> job.params)


cdef int _run_predict_job(PredictJob *job, int n_threads, bint is_float) except -1:
    # the job on up to n_threads (a shared job: a worker slow to wake is not
    # waited for) with scipy's OpenBLAS held at one thread; Ctrl-C raises
    with _BlasSerial():
        with nogil:
            if is_float:
                fb_pool_run_shared(_predict_task_f, <void *> job, n_threads)
            else:
                fb_pool_run_shared(_predict_task_d, <void *> job, n_threads)
        if job.stop:  # raised inside the block (see train_epoch)
            _raise_pending()
    return 0


# ---------------------------------------------------------------------------
# predict for small inputs: one call from Python to the kernel
# ---------------------------------------------------------------------------

cdef enum:
    # multiply-adds from which a small-input predict releases the GIL (in
    # buffers of its own): about 10-50 us of work, far above a GIL handoff
    PREDICT_NOGIL_WORK = 200000

cdef enum:
    PRED_REGRESSION = 0
    PRED_BINARY = 1
    PRED_MULTICLASS = 2


cdef bint _rows_finite(const floating *x, Py_ssize_t total) noexcept nogil:
    # no NaN or infinity among x[0:total]: x - x is 0 for finite x, NaN else
    # (a kernel: setup.py's VECTOR_KERNELS; 512 x 784 float32 values took
    # 61 us in the baseline set, a serial step of a one-chunk prediction)
    cdef Py_ssize_t j
    cdef int bad = 0
    for j in range(total):
        bad |= (x[j] - x[j]) != 0
    return not bad


cdef bint _predict_rows(const Net *net, const floating *x, Py_ssize_t n,
                        const floating *params, floating *out, floating *work,
                        unsigned int split, int n_threads, bint check_finite) noexcept nogil:
    """Forward ``n`` dense rows into ``out`` as one chunk, the layers in
    ``split`` (``split_plan``) shared by up to ``n_threads`` threads; with
    ``check_finite``, False (nothing computed) when X holds NaN or infinity."""
    cdef Input inp
    if check_finite and not _rows_finite(x, n * net.sizes[0]):
        return False
    if split:
        split_forward(net, x, n, params, out, work, split, n_threads, floating is float)
        return True
    memset(&inp, 0, sizeof(Input))
    inp.dense = x
    _forward_chunk(net, &inp, params, 0, n, n, out, work, NULL, NULL)
    return True


cdef bint _predict_rows_of(const Net *net, const void *x, Py_ssize_t n, const void *params,
                           void *out, void *work, bint is_float, unsigned int split,
                           int n_threads, bint check_finite=True) noexcept nogil:
    # _predict_rows for the dtype of the buffers
    if is_float:
        return _predict_rows(net, <const float *> x, n, <const float *> params, <float *> out,
                             <float *> work, split, n_threads, check_finite)
    return _predict_rows(net, <const double *> x, n, <const double *> params, <double *> out,
                         <double *> work, split, n_threads, check_finite)


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


cdef bint _probabilities(const floating *P, Py_ssize_t n, Py_ssize_t n_out, bint binary,
                         floating *out) noexcept nogil:
    """Class probabilities from output activations: ``[1 - p, p]`` for one
    logistic output (as the general path computes them), else the softmax
    outputs. Returns whether any probability is exactly 0."""
    cdef Py_ssize_t r, j
    cdef bint zero = False
    if binary:
        for r in range(n):
            out[2 * r] = 1 - P[r]
            out[2 * r + 1] = P[r]
    else:
        for j in range(n * n_out):
            out[j] = P[j]
    for j in range(n * (2 if binary else n_out)):
        zero |= out[j] == 0
    return zero


# numpy's own log loops for float32 and float64 (the ones np.log runs),
# called directly: a ufunc call costs more than a one-row predict. Found and
# checked against np.log once (``_find_log_loops``); where they are not found
# or differ, np.log itself is called.
cdef cnp.PyUFuncGenericFunction _log_loops[2]
cdef void *_log_loop_data[2]
cdef int _log_loops_found = 0        # 0: not looked for yet, 1: looked for


cdef int _find_log_loops() except -1:
    # np.log's loops for float32 ([0]) and float64 ([1]), NULL where not found
    # or not equal to np.log on a probe of values
    global _log_loops_found
    cdef cnp.ufunc log_ufunc = np.log
    cdef int i, t
    cdef cnp.ndarray probe, expected
    if _log_loops_found:
        return 0
    _log_loops_found = 1
    for t, dtype in enumerate((np.float32, np.float64)):
        _log_loops[t] = NULL
        num = np.dtype(dtype).num
        for i in range(log_ufunc.ntypes):
            if log_ufunc.types[2 * i] == num and log_ufunc.types[2 * i + 1] == num:
                _log_loops[t] = log_ufunc.functions[i]
                _log_loop_data[t] = log_ufunc.data[i]
                break
        if _log_loops[t] == NULL:
            continue
        probe = np.concatenate([np.linspace(0, 1, 997), np.logspace(-40, 0, 300),
                                [1e-300, 5e-324, 0.0]]).astype(dtype)
        with np.errstate(divide="ignore", under="ignore"):
            expected = np.log(probe)
        for n in (1, 2, 3, 10, 17, probe.shape[0]):
            if not np.array_equal(_apply_log_loop(probe[:n].copy(), t), expected[:n]):
                _log_loops[t] = NULL
                break
    return 0


cdef object _apply_log_loop(cnp.ndarray a, int t):
    # a = log(a) in place through numpy's loop t (C-contiguous a); returns a
    cdef char *args[2]
    cdef cnp.npy_intp n = cnp.PyArray_SIZE(a)
    cdef cnp.npy_intp steps[2]
    args[0] = args[1] = <char *> cnp.PyArray_DATA(a)
    steps[0] = steps[1] = cnp.PyArray_ITEMSIZE(a)
    _log_loops[t](args, &n, steps, _log_loop_data[t])
    return a


cdef object _log_in_place(cnp.ndarray a, bint has_zero):
    # a = np.log(a) (C-contiguous, float32 or float64), -inf for zeros
    cdef int t = 0 if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 else 1
    _find_log_loops()
    if _log_loops[t] != NULL:
        return _apply_log_loop(a, t)
    if has_zero:
        with np.errstate(divide="ignore"):   # log(0) = -inf, as the general path
            return np.log(a, out=a)
    return np.log(a, out=a)


@cython.auto_pickle(False)
cdef class Predictor:
    """``predict`` and ``predict_proba`` for small dense inputs, without the
    general validation.

    Given a fitted network (its ``NetSpec``, parameter buffer and the
    per-layer views into it), the class labels for classifiers and the kind
    ('regression', 'binary' or 'multiclass'). ``predict(X, coefs, intercepts,
    classes)`` takes the estimator's current ``coefs_``, ``intercepts_`` and
    ``classes_`` and returns the prediction, or None when the fast path does
    not apply and the caller must take the general one: X not a 2-D
    C-contiguous ndarray of the model's dtype with 1..``max_rows`` rows, lists
    that are no longer the buffer's own views or other classes (the user
    assigned new ones), or non-finite values (the general path then raises
    the usual error). ``predict_proba(X, coefs, intercepts, classes,
    log=False)`` returns a classifier's probabilities (or their logs) the
    same way. Shapes, dtype and finiteness are still checked; the workspace
    is allocated once: small inputs run in it holding the GIL (concurrent
    calls take turns), large ones in buffers of their own without it
    (``_outputs``). The caller drops the Predictor when the estimator is
    fitted again (feature names may change).
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
    cdef list split_plans           # split_plan per row count (None: not found yet)
    cdef int rows_probed            # rows_level() the layers were probed at (-1: never)

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
        self.split_plans = [None] * (max_rows + 1)
        self.rows_probed = -1

    cdef unsigned int _split_layers(self, Py_ssize_t n) except? 0:
        # split_plan for n rows, found once per row count (with the in-place
        # kernel's probes for that count)
        plan = self.split_plans[n]
        if plan is None:
            is_float = self.dtype.type_num == cnp.NPY_FLOAT32
            probe_in_place_layers(is_float, &self.spec.net, n)
            plan = self.split_plans[n] = split_plan(is_float, &self.spec.net, n)
        return <unsigned int> plan if _split_on else 0

    cdef bint _forward(self, cnp.ndarray A, Py_ssize_t n, cnp.ndarray out, cnp.ndarray work,
                       bint release_gil, unsigned int split, int n_threads):
        cdef const void *x = cnp.PyArray_DATA(A)
        cdef const void *params = cnp.PyArray_DATA(<cnp.ndarray> self.params)
        cdef void *o = cnp.PyArray_DATA(out)
        cdef void *w = cnp.PyArray_DATA(work)
        cdef bint is_float = self.dtype.type_num == cnp.NPY_FLOAT32
        cdef bint ok
        if release_gil:
            with nogil:
                ok = _predict_rows_of(&self.spec.net, x, n, params, o, w, is_float, split,
                                      n_threads)
            return ok
        return _predict_rows_of(&self.spec.net, x, n, params, o, w, is_float, split, n_threads)

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

    cdef cnp.ndarray _served(self, object X, object coefs, object intercepts, object classes):
        # X when this path serves it (a C-contiguous 2-D ndarray of the model's
        # dtype, 1..max_rows rows, the model unchanged), else None
        cdef cnp.ndarray A
        if type(X) is not np.ndarray:
            return None
        A = <cnp.ndarray> X
        if (cnp.PyArray_NDIM(A) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(A)
                or <object> cnp.PyArray_DESCR(A) is not self.dtype):
            return None
        if (cnp.PyArray_DIM(A, 0) < 1 or cnp.PyArray_DIM(A, 0) > self.max_rows
                or cnp.PyArray_DIM(A, 1) != self.spec.net.sizes[0]):
            return None
        if not self._same_model(coefs, intercepts, classes):
            return None
        return A

    cdef cnp.ndarray _outputs(self, cnp.ndarray A, Py_ssize_t n):
        """The output activations of A's n rows, or None for non-finite input.

        Small work runs in the Predictor's own buffers, holding the GIL
        (concurrent calls take turns: a GIL handoff costs more than the
        work); from PREDICT_NOGIL_WORK multiply-adds up, in buffers of the
        call's own without the GIL, so that threads predicting with one
        model run side by side."""
        cdef cnp.ndarray out = <cnp.ndarray> self.out
        cdef cnp.ndarray work = <cnp.ndarray> self.work
        cdef bint release_gil = n * self.spec.net.n_weights >= PREDICT_NOGIL_WORK
        cdef unsigned int split
        cdef int n_threads = 1
        cdef bint ok
        if self.rows_probed != rows_level():
            # the layer shapes the rows kernel may take (own_rows_product)
            probe_rows_layers(self.dtype.type_num == cnp.NPY_FLOAT32, &self.spec.net)
            self.rows_probed = rows_level()
        split = self._split_layers(n)
        if split:
            n_threads = blas_threads()   # before _BlasSerial sets it to one
        if release_gil:
            out = np.empty_like(out)
            work = np.empty_like(work)
        if n * self.max_layer_work >= BLAS_THREADED_WORK:
            # products OpenBLAS would thread: keep it on one thread (its idle
            # workers would otherwise spin beside the next fit)
            with _BlasSerial():
                ok = self._forward(A, n, out, work, release_gil, split, n_threads)
        else:
            ok = self._forward(A, n, out, work, release_gil, split, n_threads)
        return out if ok else None

    def predict(self, X, coefs, intercepts, classes):
        cdef cnp.ndarray A = self._served(X, coefs, intercepts, classes)
        cdef cnp.ndarray P, idx, res
        cdef cnp.npy_intp dims[2]
        cdef Py_ssize_t n, n_out = self.spec.net.sizes[self.spec.net.n_layers]
        if A is None:
            return None
        n = cnp.PyArray_DIM(A, 0)
        P = self._outputs(A, n)
        if P is None:
            return None
        if self.kind == PRED_REGRESSION:
            dims[0] = n
            dims[1] = n_out
            res = cnp.PyArray_EMPTY(1 if n_out == 1 else 2, dims, self.dtype.type_num, 0)
            memcpy(cnp.PyArray_DATA(res), cnp.PyArray_DATA(P), n * n_out * self.dtype.itemsize)
            return res
        dims[0] = n
        idx = cnp.PyArray_EMPTY(1, dims, cnp.NPY_INTP, 0)
        if self.dtype.type_num == cnp.NPY_FLOAT32:
            _output_labels(<float *> cnp.PyArray_DATA(P), n, n_out, self.kind == PRED_BINARY,
                           <cnp.npy_intp *> cnp.PyArray_DATA(idx))
        else:
            _output_labels(<double *> cnp.PyArray_DATA(P), n, n_out, self.kind == PRED_BINARY,
                           <cnp.npy_intp *> cnp.PyArray_DATA(idx))
        return _take_from(<cnp.ndarray> self.classes, idx, 0, NULL, cnp.NPY_RAISE)

    def predict_proba(self, X, coefs, intercepts, classes, bint log=False):
        """A classifier's class probabilities (two columns for one logistic
        output, ``[1 - p, p]``), or their logs (numpy's ``log``, as the
        general path takes them); None when this path does not serve X (see
        ``predict``) or the model is a regressor."""
        cdef cnp.ndarray A = self._served(X, coefs, intercepts, classes)
        cdef cnp.ndarray P, res
        cdef cnp.npy_intp dims[2]
        cdef Py_ssize_t n, n_out = self.spec.net.sizes[self.spec.net.n_layers]
        cdef bint zero
        if A is None or self.kind == PRED_REGRESSION:
            return None
        n = cnp.PyArray_DIM(A, 0)
        P = self._outputs(A, n)
        if P is None:
            return None
        dims[0] = n
        dims[1] = 2 if self.kind == PRED_BINARY else n_out
        res = cnp.PyArray_EMPTY(2, dims, self.dtype.type_num, 0)
        if self.dtype.type_num == cnp.NPY_FLOAT32:
            zero = _probabilities(<float *> cnp.PyArray_DATA(P), n, n_out,
                                  self.kind == PRED_BINARY, <float *> cnp.PyArray_DATA(res))
        else:
            zero = _probabilities(<double *> cnp.PyArray_DATA(P), n, n_out,
                                  self.kind == PRED_BINARY, <double *> cnp.PyArray_DATA(res))
        if log:
            _log_in_place(res, zero)
        return res
