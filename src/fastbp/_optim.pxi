# ---------------------------------------------------------------------------
# Optimizer steps over ranges of the flat buffer
# ---------------------------------------------------------------------------

cdef struct Optim:
    int kind
    double learning_rate      # current rate (SGD: after the schedule)
    double momentum
    int nesterov
    double beta_1
    double beta_2
    double epsilon
    long long t               # Adam's step count, updated in place


cdef struct Step:
    # the constants of one optimizer step (the same on every thread)
    int kind
    int nesterov
    double alpha
    double sw_sum
    double lr                 # SGD: the rate; Adam: lr_t
    double momentum
    double beta_1
    double beta_2
    double epsilon


cdef void _make_step(Step *st, const Optim *opt, long long t, double alpha,
                     double sw_sum) noexcept nogil:
    st.kind = opt.kind
    st.nesterov = opt.nesterov
    st.alpha = alpha
    st.sw_sum = sw_sum
    st.momentum = opt.momentum
    st.beta_1 = opt.beta_1
    st.beta_2 = opt.beta_2
    st.epsilon = opt.epsilon
    if opt.kind == OPT_SGD:
        st.lr = opt.learning_rate
    else:
        st.lr = opt.learning_rate * sqrt(1 - pow(opt.beta_2, <double> t)) / (
            1 - pow(opt.beta_1, <double> t))


cdef double update_range(floating *params, const floating *grads, floating *s1,
                         floating *s2, Py_ssize_t n, bint weights, bint zero_grad,
                         const Step *st) noexcept nogil:
    """One optimizer step on ``n`` consecutive parameters from raw gradient
    sums; returns the sum of their squares after the update when they are
    weights (the next batch's L2 penalty), else 0.

    The gradient scikit-learn uses is ``g = (G + alpha * W) / sw_sum`` for
    weights and ``g = G / sw_sum`` for intercepts. SGD (``s1`` = velocity):
    ``v = momentum * v - lr * g``; the update is ``v`` or, with Nesterov,
    ``momentum * v - lr * g``. Adam (``s1`` = m, ``s2`` = v): ``m = b1 m +
    (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, update ``-lr_t m / (sqrt(v) +
    eps)`` with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``.

    ``zero_grad``: the gradient sums are zero and ``grads`` is not read (rows
    of the sparse first layer that no sample of the batch touched). Works in
    blocks that stay in L1; each loop is branch-free so the compiler
    vectorises it.
    """
    cdef floating gbuf[UPDATE_BLOCK]
    cdef floating a = <floating> st.alpha
    cdef floating sw = <floating> st.sw_sum
    cdef floating lr = <floating> st.lr
    cdef floating mom = <floating> st.momentum
    cdef floating b1 = <floating> st.beta_1
    cdef floating one_b1 = <floating> (1 - st.beta_1)
    cdef floating b2 = <floating> st.beta_2
    cdef floating one_b2 = <floating> (1 - st.beta_2)
    cdef floating eps = <floating> st.epsilon
    cdef floating gj, v
    cdef floating *p
    cdef floating *m1
    cdef floating *m2
    cdef const floating *gr
    cdef Py_ssize_t start = 0, nb, j
    cdef double q0 = 0, q1 = 0, q2 = 0, q3 = 0, q4 = 0, q5 = 0, q6 = 0, q7 = 0
    cdef double w0
    while start < n:
        nb = n - start
        if nb > UPDATE_BLOCK:
            nb = UPDATE_BLOCK
        p = params + start
        gr = grads + start
        m1 = s1 + start
        m2 = s2 + start
        # the gradient scikit-learn steps along
        if zero_grad and weights:
            for j in range(nb):
                gbuf[j] = (a * p[j]) / sw
        elif zero_grad:
            for j in range(nb):
                gbuf[j] = 0
        elif weights:
            for j in range(nb):
                gbuf[j] = (gr[j] + a * p[j]) / sw
        else:
            for j in range(nb):
                gbuf[j] = gr[j] / sw
        # the step
        if st.kind == OPT_ADAM:
            for j in range(nb):
                gj = gbuf[j]
                m1[j] = b1 * m1[j] + one_b1 * gj
                m2[j] = b2 * m2[j] + one_b2 * (gj * gj)
                p[j] = p[j] + (-lr * m1[j]) / (f_sqrt(m2[j]) + eps)
        elif st.nesterov:
            for j in range(nb):
                gj = gbuf[j]
                v = mom * m1[j] - lr * gj
                m1[j] = v
                p[j] = p[j] + (mom * v - lr * gj)
        else:
            for j in range(nb):
                gj = gbuf[j]
                v = mom * m1[j] - lr * gj
                m1[j] = v
                p[j] = p[j] + v
        if weights:
            # eight independent lanes so the sum vectorises (it only feeds
            # the reported loss, never the weights)
            j = 0
            while j + 8 <= nb:
                q0 += (<double> p[j]) * p[j]
                q1 += (<double> p[j + 1]) * p[j + 1]
                q2 += (<double> p[j + 2]) * p[j + 2]
                q3 += (<double> p[j + 3]) * p[j + 3]
                q4 += (<double> p[j + 4]) * p[j + 4]
                q5 += (<double> p[j + 5]) * p[j + 5]
                q6 += (<double> p[j + 6]) * p[j + 6]
                q7 += (<double> p[j + 7]) * p[j + 7]
                j += 8
            while j < nb:
                w0 = p[j]
                q0 += w0 * w0
                j += 1
        start += nb
    return ((q0 + q1) + (q2 + q3)) + ((q4 + q5) + (q6 + q7))


cdef double weights_sumsq(const Net *net, const floating *params) noexcept nogil:
    cdef int i
    cdef Py_ssize_t j
    cdef double s = 0.0
    for i in range(net.n_layers):
        for j in range(net.off_w[i], net.off_b[i]):
            s += (<double> params[j]) * params[j]
    return s
