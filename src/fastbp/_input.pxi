# The rows the entry points read: one object per input, checked once.
#
# Notes
# -----
# * An ``InputMatrix`` wraps a dense C-contiguous matrix or a CSR matrix's
#   arrays (values in the model dtype, intp indices) without copying them,
#   and fills the ``Input`` struct the kernels read. Every entry point binds
#   it with ``_bind_input`` (dtype, features, rows), so the checks live here.
# * CSR structure is checked when the object is built (indptr monotone and
#   within the values, column indices within the features): the kernels run
#   without bounds checks.
# * A new input kind (say a dense block beside a CSR block) is a new field of
#   ``Input``, its case in the constructor and in the first-layer kernels
#   (_layers.pxi).
# * Training reads X's rows (and Y's) in the epoch's shuffled order: each
#   row's first access misses the caches, so the loops that read them ask
#   for the rows ahead (``fb_prefetch_lines``, a hint with no effect on
#   results).

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FB_PREFETCH(p) __builtin_prefetch((p))
    #elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    #include <xmmintrin.h>
    #define FB_PREFETCH(p) _mm_prefetch((const char *) (p), _MM_HINT_T0)
    #else
    #define FB_PREFETCH(p) ((void) (p))
    #endif
    /* bring the cache lines of p[0:nbytes] in: a hint (no fault, no effect
       on results) */
    static inline void fb_prefetch_lines(const void *p, Py_ssize_t nbytes) {
        const char *c = (const char *) p;
        Py_ssize_t i;
        for (i = 0; i < nbytes; i += 64) FB_PREFETCH(c + i);
        if (nbytes > 0) FB_PREFETCH(c + nbytes - 1);
    }
    """
    void fb_prefetch_lines(const void *p, Py_ssize_t nbytes) nogil


@cython.final
cdef class InputMatrix:
    """Rows for the engine: a 2-D C-contiguous float32/float64 ndarray, or a
    scipy CSR matrix whose values have that dtype (its index arrays are
    taken as intp, copied only if they are narrower). The arrays are
    referenced, never copied; they must not change while the engine runs."""
    cdef Input rows
    cdef readonly Py_ssize_t n_rows
    cdef readonly Py_ssize_t n_features
    cdef readonly object dtype
    cdef readonly bint is_sparse
    cdef readonly object matrix
    cdef object arrays              # what ``rows`` points into, kept alive

    def __cinit__(self, matrix):
        memset(&self.rows, 0, sizeof(Input))
        self.matrix = matrix
        if isinstance(matrix, np.ndarray):
            self._bind_dense(matrix)
        elif getattr(matrix, "format", None) == "csr":
            self._bind_csr(matrix)
        else:
            raise TypeError(f"InputMatrix takes an ndarray or a CSR matrix, got "
                            f"{type(matrix).__name__}")

    cdef int _bind_dense(self, cnp.ndarray X) except -1:
        if X.ndim != 2 or not X.flags.c_contiguous or X.dtype not in (np.float32, np.float64):
            raise ValueError(f"a dense input must be a 2-D C-contiguous float32 or float64 "
                             f"array, got ndim={X.ndim}, dtype={X.dtype}, "
                             f"C-contiguous={X.flags.c_contiguous}")
        self.n_rows, self.n_features = X.shape[0], X.shape[1]
        self.dtype = X.dtype
        self.arrays = X
        self.rows.dense = cnp.PyArray_DATA(X) if self.n_rows > 0 else NULL
        return 0

    cdef int _bind_csr(self, X) except -1:
        cdef cnp.ndarray data = X.data
        cdef cnp.ndarray indices = np.ascontiguousarray(X.indices, dtype=np.intp)
        cdef cnp.ndarray indptr = np.ascontiguousarray(X.indptr, dtype=np.intp)
        if (data.ndim != 1 or not data.flags.c_contiguous
                or data.dtype not in (np.float32, np.float64)):
            raise ValueError(f"CSR values must be a contiguous float32 or float64 array, "
                             f"got dtype {data.dtype}")
        self.n_rows, self.n_features = X.shape[0], X.shape[1]
        self.dtype = data.dtype
        self.is_sparse = True
        _check_csr(<const Py_ssize_t *> cnp.PyArray_DATA(indptr),
                   <const Py_ssize_t *> cnp.PyArray_DATA(indices), self.n_rows,
                   indptr.shape[0], indices.shape[0], data.shape[0], self.n_features)
        self.arrays = (data, indices, indptr)
        # an empty matrix still gets non-NULL pointers: NULL values mean dense
        self.rows.csr_indptr = <const Py_ssize_t *> cnp.PyArray_DATA(indptr)
        self.rows.csr_data = (cnp.PyArray_DATA(data) if data.shape[0] > 0
                              else <const void *> self.rows.csr_indptr)
        self.rows.csr_indices = (<const Py_ssize_t *> cnp.PyArray_DATA(indices)
                                 if indices.shape[0] > 0 else self.rows.csr_indptr)
        return 0

    def __reduce__(self):
        return (InputMatrix, (self.matrix,))


cdef int _check_csr(const Py_ssize_t *indptr, const Py_ssize_t *indices, Py_ssize_t n_rows,
                    Py_ssize_t n_indptr, Py_ssize_t n_indices, Py_ssize_t n_values,
                    Py_ssize_t n_features) except -1:
    # what the sparse kernels rely on, checked once (they index without checks)
    cdef Py_ssize_t r, k
    cdef bint ok = n_indptr == n_rows + 1 and n_indices == n_values
    if ok:
        ok = indptr[0] == 0 and indptr[n_rows] <= n_values
        for r in range(n_rows):
            if indptr[r + 1] < indptr[r]:
                ok = False
                break
    if ok:
        for k in range(indptr[n_rows]):
            if indices[k] < 0 or indices[k] >= n_features:
                ok = False
                break
    if not ok:
        raise ValueError("the CSR matrix is malformed (indptr not monotone from 0 within the "
                         "values, or column indices outside 0..n_features-1)")
    return 0


cdef int _bind_input(Input *inp, const Net *net, InputMatrix X, Py_ssize_t n_rows,
                     str rows_of, floating *dtype_tag) except -1:
    """The one input check of the entry points: ``X`` in the engine's dtype,
    with the network's features and the ``n_rows`` rows of ``rows_of``;
    points ``inp`` at it (valid while the caller holds ``X``)."""
    cdef object dtype
    if floating is float:
        dtype = np.float32
    else:
        dtype = np.float64
    if X.dtype != dtype:
        raise ValueError(f"X has dtype {X.dtype}, the other buffers {np.dtype(dtype)}")
    if X.n_rows != n_rows:
        raise ValueError(f"X has {X.n_rows} rows, {rows_of} has {n_rows}")
    if X.n_features != net.sizes[0]:
        raise ValueError(f"X has {X.n_features} features, the network expects "
                         f"{net.sizes[0]}")
    inp[0] = X.rows
    return 0
