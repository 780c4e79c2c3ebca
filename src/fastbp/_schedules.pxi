# Learning-rate schedules per step: one function per schedule.
#
# Notes
# -----
# * A schedule is a factor on the learning rate of each optimizer step,
#   computed in the engine from the step's index (counted from 1 over the
#   fit, ``_make_step`` in _optim.pxi): a kind (``SCHEDULE_*``), its name in
#   ``_SCHEDULE_KINDS`` and one function of the progress ``x`` in [0, 1]
#   through the steps after the warm-up, with its case in
#   ``schedule_factor``.
# * Warm-up is shared by every kind: the first ``warmup_steps`` steps scale
#   the rate by ``t / warmup_steps`` (linear, the first step not at zero);
#   the schedule then runs over the remaining steps (``x = (t - warmup - 1)
#   / (total - warmup)``, 0 at the first step after the warm-up). Steps past
#   the total keep the factor of x = 1.
# * The per-epoch schedules of scikit-learn ('constant', 'invscaling',
#   'adaptive') change the rate between epochs in Python; here they are
#   SCHEDULE_CONSTANT (factor 1, or the warm-up's).
# * Example of an addition, RealMLP's coslog4 (four cosine cycles on a log
#   time axis): ``SCHEDULE_COSLOG4 = 3``, ``"coslog4"`` in
#   ``_SCHEDULE_KINDS``, ``0.5 * (1 - cos(2 pi log2(1 + 15 x)))`` as
#   ``coslog4_factor(x)`` and its case below; Python: its name in
#   ``_optimizers.SCHEDULES`` and ``STEP_SCHEDULES``.

from libc.math cimport cos

cdef enum:
    SCHEDULE_CONSTANT = 0
    SCHEDULE_COSINE = 1
    SCHEDULE_FLAT_COSINE = 2

_SCHEDULE_KINDS = {"constant": SCHEDULE_CONSTANT, "cosine": SCHEDULE_COSINE,
                   "flat_cosine": SCHEDULE_FLAT_COSINE}


cdef struct ScheduleConfig:
    int kind
    long long warmup_steps        # linear warm-up over the first steps (0: none)
    long long total_steps         # steps of the whole fit, warm-up included


cdef inline double cosine_factor(double x) noexcept nogil:
    # from 1 to 0 along half a cosine (PyTorch's CosineAnnealingLR, eta_min 0)
    return 0.5 * (1.0 + cos(3.141592653589793 * x))


cdef inline double flat_cosine_factor(double x) noexcept nogil:
    # 1 for the first half, then half a cosine to 0 (RealMLP's flat_cos)
    return 1.0 if x <= 0.5 else 0.5 * (1.0 + cos(3.141592653589793 * (2.0 * x - 1.0)))


cdef inline double schedule_factor(const ScheduleConfig *schedule, long long t) noexcept nogil:
    """The factor on the learning rate of step ``t`` (counted from 1)."""
    cdef long long warmup = schedule.warmup_steps
    cdef long long decay_steps = schedule.total_steps - warmup
    cdef double warm = 1.0, x
    if t <= warmup:
        warm = (<double> t) / (<double> warmup)
    if schedule.kind == SCHEDULE_CONSTANT:
        return warm
    if decay_steps < 1:
        decay_steps = 1
    x = (<double> (t - warmup - 1)) / (<double> decay_steps)
    x = 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)
    if schedule.kind == SCHEDULE_COSINE:
        return warm * cosine_factor(x)
    return warm * flat_cosine_factor(x)
