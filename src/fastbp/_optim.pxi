# Optimizer steps over ranges of the flat parameter buffer.
#
# Notes
# -----
# * An optimizer is a kind (``OPT_*``), its settings in ``OptimizerConfig``
#   (held by an ``OptimizerRecord`` the Python side updates between epochs), and
#   one step function over a block of parameters (``sgd_step``,
#   ``nesterov_step``, ``adam_step``) with its case in ``update_range``.
# * ``_make_step`` turns the settings into one batch's ``Step`` constants
#   (the same on every thread): the learning rate of that step (the
#   schedule's factor, _schedules.pxi, and Adam's bias correction included),
#   the decoupled weight decay's factor, the L2 penalty and the batch's
#   sample-weight sum. The step count ``t`` advances for every optimizer.
# * Decoupled weight decay (AdamW, SGDW): weights only, never intercepts,
#   ``w *= 1 - lr * weight_decay`` with lr the scheduled rate (before Adam's
#   bias correction), after the gradient is taken and before the step, as
#   PyTorch's AdamW. Clipping (``max_grad_norm``) scales the step's gradient
#   by the factor the epoch computes from its global norm (``Step.clip``).
# * ``update_range`` is the one fused loop over a range: in blocks that stay
#   in L1, scikit-learn's gradient ``(G + alpha W) / sw_sum`` into a block
#   buffer, then the step, then the squared weights (the next batch's L2
#   term). The switch on the kind is outside the inner loops, which are
#   branch-free and vectorise; it carries FASTBP_VECTOR_CLONES.
# * Arithmetic follows scikit-learn's order of operations (``momentum * v -
#   lr * g``, ``-lr_t * m / (sqrt(v) + eps)``) so that a float64 fit
#   reproduces its weights up to BLAS rounding.

cdef enum:
    OPT_SGD = 0
    OPT_NESTEROV = 1          # SGD with Nesterov momentum
    OPT_ADAM = 2

cdef enum:
    UPDATE_BLOCK = 1024       # parameters per block: the gradient block stays in L1


cdef struct OptimizerConfig:
    int kind
    double learning_rate      # current rate (SGD: after the per-epoch schedule)
    double momentum
    double beta_1
    double beta_2
    double epsilon
    long long t               # steps taken before the epoch (Adam's bias correction)
    double weight_decay       # decoupled; 0: none
    double max_grad_norm      # clip the gradient's global norm to this; 0: no clipping
    ScheduleConfig schedule   # the per-step factor (_schedules.pxi)


cdef struct Step:
    # the constants of one batch's step (the same on every thread)
    int kind
    double alpha
    double sw_sum
    double lr                 # SGD: the rate; Adam: lr_t
    double momentum
    double beta_1
    double beta_2
    double epsilon
    double decay              # weights *= decay before the step (1: no weight decay)
    double clip               # gradient *= clip (1: not clipped)


_OPTIMIZER_KINDS = {"sgd": OPT_SGD, "nesterov": OPT_NESTEROV, "adam": OPT_ADAM}


@cython.final
cdef class OptimizerRecord:
    """An optimizer's settings and step count as ``train_epoch`` reads them:
    typed fields, so an epoch call reads them without a dict, and the step
    count advances in place.

    Parameters
    ----------
    kind : {'sgd', 'nesterov', 'adam'}
    learning_rate : float
        The rate of the next epoch (SGD: after the per-epoch schedule; Adam:
        before its bias correction), before the per-step schedule's factor.
    momentum, beta_1, beta_2, epsilon : float
    t : int
        Steps taken so far (Adam's bias correction, the schedule's progress).
    weight_decay : float, default=0.0
        Decoupled weight decay (weights only).
    max_grad_norm : float, default=0.0
        Clip each step's gradient to this global norm; 0: no clipping.
    schedule : {'constant', 'cosine', 'flat_cosine'}, default='constant'
        The per-step factor on the rate (_schedules.pxi).
    warmup_steps, total_steps : int, default=0
        Linear warm-up steps, and the fit's total steps (the schedule's length).
    """
    cdef OptimizerConfig config

    def __cinit__(self, str kind, double learning_rate, double momentum=0.0,
                  double beta_1=0.9, double beta_2=0.999, double epsilon=1e-8,
                  long long t=0, double weight_decay=0.0, double max_grad_norm=0.0,
                  str schedule="constant", long long warmup_steps=0,
                  long long total_steps=0):
        if kind not in _OPTIMIZER_KINDS:
            raise ValueError(f"kind must be one of {sorted(_OPTIMIZER_KINDS)}, got {kind!r}")
        if schedule not in _SCHEDULE_KINDS:
            raise ValueError(f"schedule must be one of {sorted(_SCHEDULE_KINDS)}, got "
                             f"{schedule!r}")
        if not (weight_decay >= 0 and max_grad_norm >= 0 and 0 <= warmup_steps
                and (warmup_steps <= total_steps or total_steps == 0)):
            raise ValueError(
                f"weight_decay and max_grad_norm must be >= 0 and 0 <= warmup_steps <= "
                f"total_steps, got weight_decay={weight_decay}, "
                f"max_grad_norm={max_grad_norm}, warmup_steps={warmup_steps}, "
                f"total_steps={total_steps}")
        self.config.kind = _OPTIMIZER_KINDS[kind]
        self.config.learning_rate = learning_rate
        self.config.momentum = momentum
        self.config.beta_1 = beta_1
        self.config.beta_2 = beta_2
        self.config.epsilon = epsilon
        self.config.t = t
        self.config.weight_decay = weight_decay
        self.config.max_grad_norm = max_grad_norm
        self.config.schedule.kind = _SCHEDULE_KINDS[schedule]
        self.config.schedule.warmup_steps = warmup_steps
        self.config.schedule.total_steps = total_steps

    @property
    def kind(self):
        return next(k for k, v in _OPTIMIZER_KINDS.items() if v == self.config.kind)

    @property
    def schedule(self):
        return next(k for k, v in _SCHEDULE_KINDS.items() if v == self.config.schedule.kind)

    @property
    def learning_rate(self):
        return self.config.learning_rate

    @learning_rate.setter
    def learning_rate(self, double value):
        self.config.learning_rate = value

    @property
    def t(self):
        return self.config.t

    @t.setter
    def t(self, long long value):
        self.config.t = value

    def step_learning_rate(self, long long t):
        """The learning rate of step ``t`` (counted from 1): the rate times the
        schedule's factor, before Adam's bias correction."""
        return self.config.learning_rate * schedule_factor(&self.config.schedule, t)

    def __reduce__(self):
        return (OptimizerRecord, (self.kind, self.config.learning_rate, self.config.momentum,
                                  self.config.beta_1, self.config.beta_2, self.config.epsilon,
                                  self.config.t, self.config.weight_decay,
                                  self.config.max_grad_norm, self.schedule,
                                  self.config.schedule.warmup_steps,
                                  self.config.schedule.total_steps))


cdef inline void _count_steps(OptimizerConfig *opt, long long n_batches) noexcept nogil:
    # every optimizer counts its steps across epochs (Adam's bias correction,
    # the schedule's progress)
    opt.t += n_batches


cdef void _make_step(Step *step, const OptimizerConfig *opt, long long t, double alpha,
                     double sw_sum) noexcept nogil:
    # the constants of step ``t`` (counted from 1) for a batch of weight sw_sum
    cdef double lr
    step.kind = opt.kind
    step.alpha = alpha
    step.sw_sum = sw_sum
    step.momentum = opt.momentum
    step.beta_1 = opt.beta_1
    step.beta_2 = opt.beta_2
    step.epsilon = opt.epsilon
    step.clip = 1.0
    lr = opt.learning_rate
    if opt.schedule.kind != SCHEDULE_CONSTANT or opt.schedule.warmup_steps > 0:
        lr = lr * schedule_factor(&opt.schedule, t)
    step.decay = 1.0 - lr * opt.weight_decay
    if opt.kind == OPT_ADAM:
        step.lr = lr * sqrt(1 - pow(opt.beta_2, <double> t)) / (1 - pow(opt.beta_1, <double> t))
    else:
        step.lr = lr


# ---------------------------------------------------------------------------
# The steps: one function per optimizer, over a block of ``nb`` parameters
# with the gradient ``g`` scikit-learn steps along
# ---------------------------------------------------------------------------

cdef inline void sgd_step(floating *p, floating *velocity, const floating *g, Py_ssize_t nb,
                          const Step *step) noexcept nogil:
    # v = momentum * v - lr * g; p += v
    cdef floating lr = <floating> step.lr
    cdef floating mom = <floating> step.momentum
    cdef floating gj, v
    cdef Py_ssize_t j
    for j in range(nb):
        gj = g[j]
        v = mom * velocity[j] - lr * gj
        velocity[j] = v
        p[j] = p[j] + v


cdef inline void nesterov_step(floating *p, floating *velocity, const floating *g,
                               Py_ssize_t nb, const Step *step) noexcept nogil:
    # v = momentum * v - lr * g; p += momentum * v - lr * g
    cdef floating lr = <floating> step.lr
    cdef floating mom = <floating> step.momentum
    cdef floating gj, v
    cdef Py_ssize_t j
    for j in range(nb):
        gj = g[j]
        v = mom * velocity[j] - lr * gj
        velocity[j] = v
        p[j] = p[j] + (mom * v - lr * gj)


cdef inline void adam_step(floating *p, floating *moment1, floating *moment2, const floating *g,
                           Py_ssize_t nb, const Step *step) noexcept nogil:
    # m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p += -lr_t m / (sqrt(v) + eps)
    cdef floating lr = <floating> step.lr
    cdef floating b1 = <floating> step.beta_1
    cdef floating one_b1 = <floating> (1 - step.beta_1)
    cdef floating b2 = <floating> step.beta_2
    cdef floating one_b2 = <floating> (1 - step.beta_2)
    cdef floating eps = <floating> step.epsilon
    cdef floating gj
    cdef Py_ssize_t j
    for j in range(nb):
        gj = g[j]
        moment1[j] = b1 * moment1[j] + one_b1 * gj
        moment2[j] = b2 * moment2[j] + one_b2 * (gj * gj)
        p[j] = p[j] + (-lr * moment1[j]) / (f_sqrt(moment2[j]) + eps)


cdef void _clip_and_decay(floating *g, floating *p, Py_ssize_t nb, bint weights,
                          const Step *step) noexcept nogil:
    # the options between the gradient and the step: the clipped gradient
    # (g *= clip) and the decoupled weight decay (weights *= decay). A
    # function of its own, called only with them, so that update_range's
    # default loop stays as it is (inlined there, these loops cost Adam's
    # small blocks ~150 ns per step even when skipped)
    cdef floating clip = <floating> step.clip
    cdef floating decay = <floating> step.decay
    cdef Py_ssize_t j
    if step.clip != 1.0:
        for j in range(nb):
            g[j] = g[j] * clip
    if weights and step.decay != 1.0:
        for j in range(nb):
            p[j] = p[j] * decay


cdef inline void _step_gradient(floating *g, const floating *p, const floating *grads,
                                const floating *grads2, Py_ssize_t nb, bint weights,
                                bint zero_grad, const Step *step) noexcept nogil:
    # g = (G + alpha W) / sw_sum for weights, G / sw_sum for intercepts; with
    # ``zero_grad`` G is zero and not read; G = grads + grads2 when grads2 is
    # given (rounded as a sum stored first would be)
    cdef floating a = <floating> step.alpha
    cdef floating sw = <floating> step.sw_sum
    cdef floating s
    cdef Py_ssize_t j
    if grads2 != NULL and not zero_grad:
        if weights:
            for j in range(nb):
                s = grads[j] + grads2[j]
                g[j] = (s + a * p[j]) / sw
        else:
            for j in range(nb):
                s = grads[j] + grads2[j]
                g[j] = s / sw
    elif zero_grad and weights:
        for j in range(nb):
            g[j] = (a * p[j]) / sw
    elif zero_grad:
        for j in range(nb):
            g[j] = 0
    elif weights:
        for j in range(nb):
            g[j] = (grads[j] + a * p[j]) / sw
    else:
        for j in range(nb):
            g[j] = grads[j] / sw


cdef double update_range(floating *params, const floating *grads, floating *state1,
                         floating *state2, Py_ssize_t n, bint weights, bint zero_grad,
                         const Step *step, const floating *grads2=NULL) noexcept nogil:
    """One optimizer step on ``n`` consecutive parameters from raw gradient
    sums (``state1``, ``state2``: the optimizer's state for them); returns the
    sum of their squares after the update when they are weights (the next
    batch's L2 penalty), else 0.

    ``zero_grad``: the gradient sums are zero and ``grads`` is not read (rows
    of the sparse first layer that no sample of the batch touched).
    ``grads2``: a second gradient to add to ``grads`` (the data-parallel
    mode's second half-batch), read only: neither is written.
    """
    cdef floating g[UPDATE_BLOCK]
    cdef floating *p
    cdef Py_ssize_t start = 0, nb, j
    cdef double q0 = 0, q1 = 0, q2 = 0, q3 = 0, q4 = 0, q5 = 0, q6 = 0, q7 = 0
    cdef double w0
    while start < n:
        nb = n - start
        if nb > UPDATE_BLOCK:
            nb = UPDATE_BLOCK
        p = params + start
        _step_gradient(g, p, grads + start, grads2 + start if grads2 != NULL else NULL, nb,
                       weights, zero_grad, step)
        if step.decay != 1.0 or step.clip != 1.0:
            _clip_and_decay(g, p, nb, weights, step)
        if step.kind == OPT_ADAM:
            adam_step(p, state1 + start, state2 + start, g, nb, step)
        elif step.kind == OPT_NESTEROV:
            nesterov_step(p, state1 + start, g, nb, step)
        else:
            sgd_step(p, state1 + start, g, nb, step)
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


cdef inline double _weight_sum(const floating *sw, Py_ssize_t n) noexcept nogil:
    # the sample weights' sum (n without weights)
    cdef double s = 0.0
    cdef Py_ssize_t r
    if sw == NULL:
        return <double> n
    for r in range(n):
        s += sw[r]
    return s


cdef void _finish_full_gradient(const Net *net, floating *g, const floating *p, double alpha,
                                double sw_sum) noexcept nogil:
    # a full-batch gradient from its raw sums, as scikit-learn takes it:
    # (G + alpha W) / sw_sum for weights, G / sw_sum for intercepts
    cdef floating a = <floating> alpha
    cdef floating inv = <floating> sw_sum
    cdef Py_ssize_t j
    cdef int i
    for i in range(net.n_layers):
        for j in range(net.off_w[i], net.off_b[i]):
            g[j] = (g[j] + a * p[j]) / inv
        for j in range(net.off_b[i], net.off_b[i] + net.sizes[i + 1]):
            g[j] = g[j] / inv


cdef double weights_sumsq(const Net *net, const floating *params) noexcept nogil:
    # the sum of squared weights (intercepts excluded): the L2 penalty's norm
    cdef int i
    cdef Py_ssize_t j
    cdef double s = 0.0
    for i in range(net.n_layers):
        for j in range(net.off_w[i], net.off_b[i]):
            s += (<double> params[j]) * params[j]
    return s
