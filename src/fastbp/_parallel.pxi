# Threads: the worker pool, how work is split, when to thread, Ctrl-C, and
# scipy's OpenBLAS held at one thread.
#
# Notes
# -----
# * The pool and its spin-then-sleep barriers are C (_threads.h); a job is
#   ``fn(arg, tid, nthreads)`` on up to FB_MAX_THREADS threads, the caller
#   being thread 0.
# * Whether to thread, and how, depends on the shapes alone (never on the
#   thread count, so the weights do not depend on it): ``_worth_threading``
#   (work per batch), ``_data_parallel`` (activations against parameters),
#   the fixed blocks every product is cut into (``_row_blocks``,
#   ``_weight_blocks``; threads take whole blocks: ``_share``, ``_owns``).
# * While fastbp's kernels run, scipy's OpenBLAS is held at one thread
#   (``_BlasSerial``): fastbp's threads are the only threading layer.
# * Kernels run without the GIL and take it every SIGNAL_CHECK_NS to run
#   Python's signal handlers (Ctrl-C); the exception is raised by the entry
#   point once the kernels have stopped.

cdef extern from "_threads.h" nogil:
    ctypedef struct fb_barrier:
        pass
    ctypedef void (*fb_task_fn)(void *arg, int tid, int nthreads) noexcept nogil
    void fb_barrier_init(fb_barrier *b, int n)
    void fb_barrier_destroy(fb_barrier *b)
    void fb_barrier_wait(fb_barrier *b)
    void fb_pool_run(fb_task_fn fn, void *arg, int n)
    void fb_pool_run_shared(fb_task_fn fn, void *arg, int n)
    long fb_fetch_add(long *counter)
    int fb_claim(int *flag)
    void fb_count_done(int *counter)
    int fb_wait_count(const int *counter, int value, long long limit_ns)
    long long fb_now_ns()

cdef extern from "Python.h":
    int PyErr_CheckSignals()


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------

# How often (nanoseconds of work) a kernel takes the GIL to check for Ctrl-C.
cdef long long SIGNAL_CHECK_NS = 20_000_000


cdef int _check_signals(long long *last_check) noexcept nogil:
    """Run pending Python signal handlers every SIGNAL_CHECK_NS of work.

    Returns 1 when a handler raised (KeyboardInterrupt for Ctrl-C, or whatever
    the user's handler raises); the exception stays set and the caller must
    stop and hand it on with ``_raise_pending()`` once it holds the GIL.
    """
    cdef long long now = fb_now_ns()
    cdef int stop = 0
    if now - last_check[0] < SIGNAL_CHECK_NS:
        return 0
    last_check[0] = now
    with gil:
        if PyErr_CheckSignals() != 0:
            stop = 1
    return stop


cdef int _raise_pending() except -1:
    # the exception set by a signal handler in _check_signals propagates from here
    return -1


# ---------------------------------------------------------------------------
# When to thread, and how to split
# ---------------------------------------------------------------------------

cdef enum:
    # multiply-adds per batch (forward pass) below which a second thread
    # costs more in barriers than it saves (measured; see benchmarks/)
    MIN_PARALLEL_WORK = 300000
    # multiply-adds from which OpenBLAS may thread one product itself (its
    # GEMM_MULTITHREAD_THRESHOLD * 65536 is 262144; gemv starts lower)
    BLAS_THREADED_WORK = 9216

# The data-parallel mode when a batch's activations (inputs included) are at
# least this many times the parameters (measured: docs/performance.md).
cdef double DP_RATIO = 1.0


cdef inline bint _worth_threading(const Net *net, Py_ssize_t B) noexcept nogil:
    # batches of B rows have enough work for a second thread to pay
    return net.n_weights * B >= MIN_PARALLEL_WORK


cdef inline bint _data_parallel(const Net *net, Py_ssize_t B) noexcept nogil:
    """Whether dense training batches of ``B`` rows take the data-parallel
    mode: each of two fixed half-batches gets its own gradient, then the two
    are added and the step taken, each thread over its share of the
    parameters (one gradient crosses between the cores, not the batch's
    activations and deltas). Chosen by shape alone: when the batch is worth
    threading and its activations (inputs included) outweigh the parameters.
    One thread runs both halves in turn, with the same arithmetic."""
    cdef Py_ssize_t acts = 0
    cdef int i
    if B < 4 or not _worth_threading(net, B):
        return False
    for i in range(net.n_layers + 1):
        acts += net.sizes[i]
    return acts * B >= DP_RATIO * net.n_params


cdef inline void _split(Py_ssize_t n, int tid, int nt, Py_ssize_t *lo,
                        Py_ssize_t *hi) noexcept nogil:
    """This thread's share ``[lo, hi)`` of ``n`` items (columns of a bias;
    the data-parallel mode's half ``tid`` of a batch with ``nt`` = 2). No
    share holds a single item unless ``n`` is 1: a product over one row
    takes other paths (gemv, typed loops) than one over several."""
    cdef Py_ssize_t chunk
    if nt <= 1:
        lo[0] = 0
        hi[0] = n
        return
    chunk = (n + nt - 1) // nt
    if chunk < 2:
        chunk = 2
    lo[0] = tid * chunk if tid * chunk < n else n
    if lo[0] == n - 1 and lo[0] > 0:
        lo[0] = n                       # the lone last item joins the share before
    hi[0] = lo[0] + chunk if lo[0] + chunk < n else n
    if hi[0] == n - 1:
        hi[0] = n


cdef inline void _share(Py_ssize_t n, int tid, int nt, Py_ssize_t *lo,
                        Py_ssize_t *hi) noexcept nogil:
    # thread tid's run [lo, hi) of n fixed blocks (a thread may get none)
    lo[0] = (n * tid) // nt
    hi[0] = (n * (tid + 1)) // nt


# ---------------------------------------------------------------------------
# Fixed blocks: every BLAS call's shape depends on the shapes alone
# ---------------------------------------------------------------------------
# OpenBLAS picks its kernel (and so its order of summation) by a product's
# shape: on SkylakeX a small-matrix kernel takes dgemm 50x128x128 but not
# 100x128x128. So a batch's rows (phase 1) and each layer's weights (phase 2)
# are cut into blocks fixed by the shapes, and threads take whole blocks: one
# thread runs the same calls in turn, and the weights do not depend on the
# thread count (float32 as well as float64). A block count is a power of two
# (even shares for 2, 4, 8 threads); one block when a batch is not worth
# threading (small networks keep one product per layer). A thread runs its
# consecutive blocks (one thread: all of them) as one product where a probe
# showed that this gives the blocks' bits (_block_merge.pxi): the blocks stay the
# arithmetic, the one product only saves packing the operand they share.

cdef enum:
    MAX_ROW_BLOCKS = 16       # blocks of a batch's rows, at most
    # float32 row blocks are cut on this grid (a batch's rows where that keeps
    # them nearly even, a W_i's gradient rows wherever no block is left
    # empty: ``_grid_block``): OpenBLAS's Haswell/Zen sgemm gives an output
    # row the same bits in the whole product as in a block cut on a multiple
    # of 12 rows, and not elsewhere. Its dgemm did at every cut tried:
    # float64 blocks are cut evenly (a grid of 1).
    ROW_GRID_FLOAT = 12
    ROW_BLOCK_MIN = 16        # rows per block of a batch, at least
    GRAD_BLOCK_MIN_ROWS = 8   # rows of W_i per block of its gradient, at least
    STEP_BLOCK_MIN = 256      # weights per block of the data-parallel step, at least

# Rows per block of a batch aimed at: each product packs its whole W_i, so a
# block of fewer rows costs more per row (sgemm 128 x 256 x 784 on one core:
# 3.3 us a row with 128 rows, 3.7 with 64, 5.0 with 32).
cdef Py_ssize_t ROW_BLOCK_TARGET = 64
# Weight blocks aimed at over all the layers: each product packs the batch's
# deltas again, so fewer blocks cost less; more share out more evenly.
cdef Py_ssize_t WEIGHT_BLOCKS = 8


cdef inline Py_ssize_t _row_blocks(const Net *net, Py_ssize_t B) noexcept nogil:
    """The blocks a batch of B rows is cut into for phase 1 (row-split
    mode): a power of two (even shares for 2, 4, 8 threads) of about
    ROW_BLOCK_TARGET rows each, and at least two (of at least ROW_BLOCK_MIN
    rows) so that two threads share every batch worth it."""
    cdef Py_ssize_t nb = 1
    if not _worth_threading(net, B) or B < 2 * ROW_BLOCK_MIN:
        return 1
    while nb * 2 <= B // ROW_BLOCK_TARGET and nb * 2 <= MAX_ROW_BLOCKS:
        nb *= 2
    return nb if nb > 1 else 2


cdef inline Py_ssize_t _weight_blocks(const Net *net, int i, Py_ssize_t batch_size,
                                      bint data_parallel) noexcept nogil:
    """The blocks ``W_i`` is cut into for phase 2, by the network and the
    epoch's batch size: about WEIGHT_BLOCKS blocks of equal size over all the
    layers (``_owns`` shares them out by size), of rows (their gradient is
    one product each) or, in the data-parallel mode, of consecutive weights
    (added and stepped)."""
    cdef Py_ssize_t n_layer = net.sizes[i] * net.sizes[i + 1], nb, most
    if not _worth_threading(net, batch_size):
        return 1
    nb = (2 * n_layer * WEIGHT_BLOCKS + net.n_weights) // (2 * net.n_weights)  # rounded
    most = n_layer // STEP_BLOCK_MIN if data_parallel else net.sizes[i] // GRAD_BLOCK_MIN_ROWS
    if nb > most:
        nb = most
    return nb if nb > 1 else 1


cdef inline bint _owns(Py_ssize_t done, Py_ssize_t size, Py_ssize_t total, int tid,
                       int nt) noexcept nogil:
    # whether thread tid takes the block of ``size`` items that follows ``done``
    # items of ``total``: the one whose share holds the block's middle, so that
    # blocks of unequal sizes (several layers) still share out evenly
    return ((2 * done + size) * nt) // (2 * total) == tid if total > 0 else tid == 0


cdef inline void _block(Py_ssize_t n, Py_ssize_t n_blocks, Py_ssize_t b, Py_ssize_t *lo,
                        Py_ssize_t *hi) noexcept nogil:
    # block b [lo, hi) of n items cut into n_blocks (sizes differ by one at most)
    lo[0] = (n * b) // n_blocks
    hi[0] = (n * (b + 1)) // n_blocks


cdef inline Py_ssize_t _row_grid(bint is_float) noexcept nogil:
    # the grid a dtype's row blocks are cut on (ROW_GRID_FLOAT)
    return ROW_GRID_FLOAT if is_float else 1


cdef inline Py_ssize_t _grid_cut(Py_ssize_t n, Py_ssize_t n_blocks, Py_ssize_t b,
                                 Py_ssize_t grid) noexcept nogil:
    # the even cut before block b, moved to the nearest multiple of grid
    cdef Py_ssize_t c
    if b <= 0:
        return 0
    if b >= n_blocks:
        return n
    c = ((n * b) // n_blocks + grid // 2) // grid * grid
    return c if c < n else n


cdef inline void _grid_block(Py_ssize_t n, Py_ssize_t n_blocks, Py_ssize_t b, Py_ssize_t grid,
                             bint balanced, Py_ssize_t *lo, Py_ssize_t *hi) noexcept nogil:
    """Block b [lo, hi) of n rows of a product's output cut into n_blocks with
    every cut on a multiple of ``grid`` rows (``_row_grid``), so that one
    thread may run consecutive blocks as one product where that gives the
    same bits (_block_merge.pxi). Evenly (``_block``) instead with a grid of
    1, when a block would be empty, or, ``balanced`` (a batch's rows, shared
    out statically: uneven halves keep the faster thread waiting), when a
    block would differ from the even size by more than 1/16 of it: 128 rows
    are cut 60 | 68, 200 rows 96 | 104, 256 rows in four evenly. Blocks of
    W_i's gradient rows are shared out over all the layers' weights
    (``_owns``), each thread's run of them one product where that gives
    their bits: their sizes may differ more (784 rows in seven:
    108 | 120 | 108 | 108 | 120 | 108 | 112)."""
    cdef Py_ssize_t k, size, off
    if grid > 1:
        for k in range(n_blocks):
            size = _grid_cut(n, n_blocks, k + 1, grid) - _grid_cut(n, n_blocks, k, grid)
            off = size * n_blocks - n           # n_blocks times its distance from even
            if size <= 0 or (balanced and 16 * (off if off >= 0 else -off) > n):
                grid = 1
                break
    if grid <= 1:
        _block(n, n_blocks, b, lo, hi)
        return
    lo[0] = _grid_cut(n, n_blocks, b, grid)
    hi[0] = _grid_cut(n, n_blocks, b + 1, grid)


cdef int _thread_count(int requested, const Net *net, Py_ssize_t batch_rows):
    """Threads for a job: ``requested`` if positive, else one for small
    batches and as many as scipy's OpenBLAS is allowed otherwise; at most
    FB_MAX_THREADS."""
    if requested <= 0:
        if not _worth_threading(net, batch_rows):
            return 1
        requested = blas_threads()
    return min(requested, FB_MAX_THREADS)


def epoch_threads(NetSpec spec, Py_ssize_t batch_size):
    """Threads ``train_epoch`` will use for this network and batch size."""
    return _thread_count(0, &spec.net, batch_size)


# ---------------------------------------------------------------------------
# scipy's OpenBLAS: found once, held at one thread while the kernels run
# ---------------------------------------------------------------------------

cdef int (*_blas_get_threads)() noexcept nogil
cdef void (*_blas_set_threads)(int) noexcept nogil
_blas_get_threads = NULL
_blas_set_threads = NULL
_blas_library = None


def _find_scipy_openblas():
    """Locate the OpenBLAS that ``scipy.linalg.cython_blas`` calls and bind its
    thread-count functions (Linux: from /proc/self/maps). Returns its path or
    None (then fastbp trains on one thread)."""
    global _blas_library, _blas_get_threads, _blas_set_threads
    import ctypes
    import os
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library)
    scipy_dir = os.path.dirname(os.path.dirname(os.path.abspath(scipy.linalg.__file__)))
    candidates = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                parts = line.split(None, 5)
                path = parts[5].strip() if len(parts) == 6 else ""
                name = os.path.basename(path)
                if "openblas" in name.lower() and path not in candidates:
                    candidates.append(path)
    except OSError:
        return None
    # scipy's own copy first (numpy ships another one with its own pool)
    candidates.sort(key=lambda p: not p.startswith(scipy_dir))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            get = getattr(lib, prefix + "_get_num_threads", None)
            put = getattr(lib, prefix + "_set_num_threads", None)
            if get is not None and put is not None:
                _blas_get_threads = <int (*)() noexcept nogil> <size_t> ctypes.cast(
                    get, ctypes.c_void_p).value
                _blas_set_threads = <void (*)(int) noexcept nogil> <size_t> ctypes.cast(
                    put, ctypes.c_void_p).value
                _blas_library = (path, lib)
                return path
    return None


def blas_threads():
    """Threads scipy's OpenBLAS is set to use (what ``threadpoolctl`` and
    ``OPENBLAS_NUM_THREADS`` control); fastbp trains on at most this many."""
    if _blas_get_threads == NULL:
        return 1
    return max(1, int(_blas_get_threads()))


cdef int _serial_users = 0     # _BlasSerial blocks open now
cdef int _serial_saved = 1     # scipy's OpenBLAS threads before the first of them


@cython.auto_pickle(False)
cdef class _BlasSerial:
    """Context manager: scipy's OpenBLAS on one thread while fastbp's
    kernels run, restored afterwards. fastbp's own threads are then the only
    threading layer (threaded OpenBLAS on these small products loses, and
    collapses when another process holds a core).

    Nested and concurrent uses (fits in several Python threads) share one
    count: the first entry saves the setting, the last exit restores it
    (entries and exits run under the GIL)."""
    cdef bint active

    def __cinit__(self):
        self.active = _blas_set_threads != NULL

    def __enter__(self):
        global _serial_users, _serial_saved
        if self.active:
            if _serial_users == 0:
                _serial_saved = _blas_get_threads()
                if _serial_saved != 1:
                    _blas_set_threads(1)
            _serial_users += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        global _serial_users
        if self.active:
            _serial_users -= 1
            if _serial_users == 0 and _serial_saved != 1:
                _blas_set_threads(_serial_saved)
        return False


try:
    _find_scipy_openblas()
except Exception:  # pragma: no cover - unusual platforms: train on one thread
    _blas_get_threads = NULL
    _blas_set_threads = NULL
