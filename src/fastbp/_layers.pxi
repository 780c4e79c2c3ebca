# Layer kernels over a block of rows (each call works on one thread's slice).
#
# Notes
# -----
# * The first layer is where the input kind matters: ``first_layer_product``
#   and ``first_layer_weight_grad`` read dense rows (gathered or in place)
#   through BLAS, or CSR rows in place. Every later layer is dense.
# * A block's activations (and deltas) of layers 1..L lie one after the other
#   in the workspace, ``B`` rows each (``_layer``).
# * ``_column_sums`` (bias gradients) sums in numpy's order, each column
#   written by one thread only.

cdef void first_layer_product(const Net *net, const Input *X, const floating *params,
                              const floating *A0, const Py_ssize_t *rows,
                              Py_ssize_t row0, Py_ssize_t B, floating *Z,
                              Py_ssize_t c0, Py_ssize_t c1, bint step) noexcept nogil:
    """``Z[:, c0:c1] = X[rows] @ W0[:, c0:c1]`` (no bias). Dense input
    arrives in ``A0`` (gathered rows or a pointer into X); CSR input is read
    in place. ``step``: a training step's product (``gemm_rm_step``), else
    a prediction's (``predict_gemm``)."""
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[1]
    cdef const floating *W = params + net.off_w[0]
    cdef const floating *data
    cdef const floating *wrow
    cdef floating *z
    cdef floating v
    cdef Py_ssize_t r, k, j, src
    if c1 <= c0:
        return
    if X.csr_data == NULL and step:
        gemm_rm_step(False, False, <int> B, <int> (c1 - c0), <int> n_in, <floating> 1.0,
                     A0, <int> n_in, W + c0, <int> n_out, <floating> 0.0, Z + c0, <int> n_out)
        return
    if X.csr_data == NULL:
        predict_gemm(<int> B, <int> (c1 - c0), <int> n_in, A0, <int> n_in, W + c0, <int> n_out,
                     Z + c0, <int> n_out)
        return
    data = <const floating *> X.csr_data
    for r in range(B):
        src = rows[r] if rows != NULL else row0 + r
        z = Z + r * n_out
        for j in range(c0, c1):
            z[j] = 0
        for k in range(X.csr_indptr[src], X.csr_indptr[src + 1]):
            v = data[k]
            wrow = W + X.csr_indices[k] * n_out
            for j in range(c0, c1):
                z[j] += v * wrow[j]


cdef void first_layer_weight_grad(const Net *net, const Input *X, const floating *A0,
                                  const Py_ssize_t *rows, Py_ssize_t row0, Py_ssize_t B,
                                  const floating *delta, floating beta, floating *G,
                                  Py_ssize_t k0, Py_ssize_t k1,
                                  unsigned char *touched) noexcept nogil:
    """``G[k0:k1] = X[rows][:, k0:k1]^T @ delta + beta * G[k0:k1]`` for the
    first layer (rows ``k0:k1`` of the gradient = input features ``k0:k1``).

    For CSR input with ``beta == 0`` only the rows of features present in the
    batch are written and flagged in ``touched``; the others are left as they
    are and must be read as zero (the optimizer step does, then clears the
    flags).
    """
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[1]
    cdef const floating *data
    cdef const floating *d
    cdef floating *g
    cdef floating v
    cdef Py_ssize_t r, k, j, src, col
    if k1 <= k0:
        return
    if X.csr_data == NULL:
        gemm_rm_step(True, False, <int> (k1 - k0), <int> n_out, <int> B, <floating> 1.0,
                     A0 + k0, <int> n_in, delta, <int> n_out, beta, G + k0 * n_out,
                     <int> n_out)
        return
    data = <const floating *> X.csr_data
    if beta == 0 and touched == NULL:
        memset(G + k0 * n_out, 0, (k1 - k0) * n_out * sizeof(floating))
    for r in range(B):
        src = rows[r] if rows != NULL else row0 + r
        d = delta + r * n_out
        for k in range(X.csr_indptr[src], X.csr_indptr[src + 1]):
            col = X.csr_indices[k]
            if col < k0 or col >= k1:
                continue
            v = data[k]
            g = G + col * n_out
            if beta == 0 and touched != NULL and not touched[col]:
                touched[col] = 1
                for j in range(n_out):
                    g[j] = v * d[j]
            else:
                for j in range(n_out):
                    g[j] += v * d[j]


cdef inline floating *_layer(const Net *net, floating *acts, Py_ssize_t B,
                             int i) noexcept nogil:
    # activations of layer i (1..L) inside the workspace block ``acts``
    cdef Py_ssize_t off = 0
    cdef int k
    for k in range(1, i):
        off += net.sizes[k]
    return acts + B * off


cdef void _column_sums(const floating *D, Py_ssize_t B, Py_ssize_t n_out, Py_ssize_t c0,
                       Py_ssize_t c1, floating beta, floating *out) noexcept nogil:
    """``out[c0:c1] = beta * out[c0:c1] + D[:, c0:c1].sum(axis=0)`` (beta 0 or
    1) in numpy's order: one column (a contiguous vector) pairwise, several
    row after row. Blocks of eight columns add up in registers, each column
    written once (two threads owning neighbouring columns never share a
    cache line while they add)."""
    cdef floating s0, s1, s2, s3, s4, s5, s6, s7
    cdef const floating *d
    cdef Py_ssize_t r, j
    if n_out == 1:
        if c1 > c0:
            out[0] = (out[0] if beta != 0 else 0) + _pairwise_sum(D, B)
        return
    j = c0
    while j + 8 <= c1:
        s0 = out[j] if beta != 0 else 0
        s1 = out[j + 1] if beta != 0 else 0
        s2 = out[j + 2] if beta != 0 else 0
        s3 = out[j + 3] if beta != 0 else 0
        s4 = out[j + 4] if beta != 0 else 0
        s5 = out[j + 5] if beta != 0 else 0
        s6 = out[j + 6] if beta != 0 else 0
        s7 = out[j + 7] if beta != 0 else 0
        for r in range(B):
            d = D + r * n_out + j
            s0 = s0 + d[0]
            s1 = s1 + d[1]
            s2 = s2 + d[2]
            s3 = s3 + d[3]
            s4 = s4 + d[4]
            s5 = s5 + d[5]
            s6 = s6 + d[6]
            s7 = s7 + d[7]
        out[j] = s0
        out[j + 1] = s1
        out[j + 2] = s2
        out[j + 3] = s3
        out[j + 4] = s4
        out[j + 5] = s5
        out[j + 6] = s6
        out[j + 7] = s7
        j += 8
    while j < c1:
        s0 = out[j] if beta != 0 else 0
        for r in range(B):
            s0 = s0 + D[r * n_out + j]
        out[j] = s0
        j += 1


cdef inline void _add_into(floating *a, const floating *b, Py_ssize_t n) noexcept nogil:
    # a += b, element by element
    cdef Py_ssize_t j
    for j in range(n):
        a[j] = a[j] + b[j]
