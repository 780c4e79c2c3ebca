# cython: language_level=3
"""The epoch shuffle of fastbp: numpy's ``RandomState.shuffle``, draw for draw.

Notes
-----
scikit-learn shuffles the sample order of every epoch with
``RandomState.shuffle``; fastbp makes the same swaps on its index array
without a Python call per draw. numpy's MT19937 state is read in place: 624
words are generated and tempered at once (loops that vectorise; ``_mt_twist``
and ``_mt_temper`` have AVX-512, AVX2 and baseline versions, see setup.py), read in
order, and the state is left where numpy's own draws would leave it. The
state layout is checked once against numpy's own generator
(``_mt_layout_ok``); any other bit generator, or a failed check, takes
numpy's per-draw ``random_interval`` through the bit generator's functions.
A module of its own: it shares nothing with the training engine.
"""

from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memcmp
from cpython.pycapsule cimport PyCapsule_GetPointer
from numpy.random cimport bitgen_t

import numpy as np

include "_simd.pxi"

# the kernel set, as the engine chooses it (the engine warns about FASTBP_SIMD)
_simd_level = fastbp_simd_dispatch(_requested_simd_level(False))


cdef inline uint64_t _random_interval(bitgen_t *bitgen, uint64_t mx) noexcept nogil:
    """numpy's legacy ``random_interval``: uniform in [0, mx] by masked
    rejection (RandomState.shuffle's draw)."""
    cdef uint64_t mask, value
    if mx == 0:
        return 0
    mask = mx
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if mx <= <uint64_t> 0xffffffffUL:
        value = bitgen.next_uint32(bitgen.state) & mask
        while value > mx:
            value = bitgen.next_uint32(bitgen.state) & mask
    else:
        value = bitgen.next_uint64(bitgen.state) & mask
        while value > mx:
            value = bitgen.next_uint64(bitgen.state) & mask
    return value


# numpy's MT19937 state (numpy/random/src/mt19937/mt19937.h), read in place
# once _mt_layout_ok has checked it against the generator's own draws
cdef enum:
    MT_N = 624
    MT_M = 397

cdef struct MTState:
    uint32_t key[624]
    int pos


cdef void _mt_twist(uint32_t *key) noexcept nogil:
    """The next 624 words of the state, in place (numpy's mt19937_gen); the
    loops have no dependence shorter than 227 words, so they vectorise."""
    cdef int i
    cdef uint32_t y
    for i in range(MT_N - MT_M):
        y = (key[i] & <uint32_t> 0x80000000) | (key[i + 1] & <uint32_t> 0x7fffffff)
        key[i] = key[i + MT_M] ^ (y >> 1) ^ ((y & 1) * <uint32_t> 0x9908b0df)
    for i in range(MT_N - MT_M, MT_N - 1):
        y = (key[i] & <uint32_t> 0x80000000) | (key[i + 1] & <uint32_t> 0x7fffffff)
        key[i] = key[i + MT_M - MT_N] ^ (y >> 1) ^ ((y & 1) * <uint32_t> 0x9908b0df)
    y = (key[MT_N - 1] & <uint32_t> 0x80000000) | (key[0] & <uint32_t> 0x7fffffff)
    key[MT_N - 1] = key[MT_M - 1] ^ (y >> 1) ^ ((y & 1) * <uint32_t> 0x9908b0df)


cdef void _mt_temper(const uint32_t *key, uint32_t *out, int n) noexcept nogil:
    """The 32-bit outputs of ``n`` state words (MT19937's tempering)."""
    cdef int i
    cdef uint32_t y
    for i in range(n):
        y = key[i]
        y = y ^ (y >> 11)
        y = y ^ ((y << 7) & <uint32_t> 0x9d2c5680)
        y = y ^ ((y << 15) & <uint32_t> 0xefc60000)
        out[i] = y ^ (y >> 18)


cdef void _mt_shuffle(MTState *mt, Py_ssize_t *a, Py_ssize_t n) noexcept nogil:
    """RandomState.shuffle's swaps on ``a[:n]`` (n - 1 < 2**32), drawing from
    the MT19937 state directly: a block of 624 outputs is generated and
    tempered at once, then read in order, and the state's position is left
    where numpy's own draws would leave it."""
    cdef uint32_t buf[624]
    cdef int p = mt.pos
    cdef uint32_t mask, v, w, lim, rej
    cdef Py_ssize_t i, tmp
    if p < MT_N:
        _mt_temper(mt.key + p, buf + p, MT_N - p)
    mask = <uint32_t> (n - 1)
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    for i in range(n - 1, 0, -1):
        # numpy's random_interval(i): masked rejection
        lim = <uint32_t> i
        while (mask >> 1) >= lim:
            mask >>= 1
        while True:
            if p + 2 <= MT_N:
                # the first acceptable of the next two draws, picked without a
                # branch (rejections are coin flips the CPU cannot predict);
                # both rejected (rarer) takes another turn
                v = buf[p] & mask
                w = buf[p + 1] & mask
                rej = v > lim
                v = (v & (rej - 1)) | (w & (0 - rej))
                p += 1 + rej
            else:
                if p == MT_N:
                    _mt_twist(mt.key)
                    _mt_temper(mt.key, buf, MT_N)
                    p = 0
                v = buf[p] & mask
                p += 1
            if v <= lim:
                break
        tmp = a[v]
        a[v] = a[i]
        a[i] = tmp
    mt.pos = p


cdef int _mt_layout = -1      # numpy's MT19937 state read in place: -1 unchecked, 0 no, 1 yes


cdef bint _mt_layout_ok():
    """Whether this numpy's MT19937 keeps its state as ``MTState`` and our
    generator continues it exactly (checked once, on a scratch generator)."""
    global _mt_layout
    cdef bitgen_t *bitgen
    cdef MTState *mt
    cdef MTState copy
    cdef Py_ssize_t[::1] mine
    cdef int i
    if _mt_layout >= 0:
        return _mt_layout == 1
    _mt_layout = 0
    try:
        gen = np.random.MT19937(20261128)
        gen.random_raw(100)                  # a position inside the block
        bitgen = <bitgen_t *> PyCapsule_GetPointer(gen.capsule, "BitGenerator")
        mt = <MTState *> bitgen.state
        state = gen.state["state"]
        if mt.pos != state["pos"] or list(state["key"]) != [mt.key[i] for i in range(MT_N)]:
            return False
        memcpy(&copy, mt, sizeof(MTState))
        rs = np.random.RandomState(gen)
        ref = np.arange(3000, dtype=np.intp)
        rs.shuffle(ref)                       # a few blocks of draws, rejections included
        mine = np.arange(3000, dtype=np.intp)
        _mt_shuffle(&copy, &mine[0], 3000)
        if not np.array_equal(np.asarray(mine), ref) or copy.pos != mt.pos:
            return False
        if memcmp(copy.key, mt.key, sizeof(copy.key)) != 0:
            return False
    except Exception:
        return False
    _mt_layout = 1
    return True


def shuffle_inplace(Py_ssize_t[::1] a, random_state):
    """Shuffle ``a`` in place exactly as ``random_state.shuffle(a)`` does (same
    draws, same result, same generator state afterwards), without the
    Python-level overhead. ``random_state`` is a ``numpy.random.RandomState``.
    Applying the shuffle's swaps to ``a`` gives ``a[p]`` where ``p`` is the
    permutation ``random_state.shuffle(np.arange(len(a)))`` would produce.
    Returns True when it read numpy's MT19937 state in place (else it drew
    through the bit generator's functions, one call per draw).
    """
    cdef bitgen_t *bitgen
    cdef Py_ssize_t i, j, n = a.shape[0]
    cdef Py_ssize_t tmp
    cdef bint direct
    bit_generator = random_state._bit_generator
    bitgen = <bitgen_t *> PyCapsule_GetPointer(bit_generator.capsule, "BitGenerator")
    if n <= 1:
        return False
    direct = (type(bit_generator) is np.random.MT19937 and n - 1 <= <Py_ssize_t> 0xffffffff
              and _mt_layout_ok())
    with bit_generator.lock, nogil:
        if direct:
            _mt_shuffle(<MTState *> bitgen.state, &a[0], n)
        else:
            for i in range(n - 1, 0, -1):
                j = <Py_ssize_t> _random_interval(bitgen, <uint64_t> i)
                tmp = a[j]
                a[j] = a[i]
                a[i] = tmp
    return direct
