"""Counter-based normal random numbers for compiled code.

Every normal sdesim draws is a pure function of ``(key, path, cell, tag, index)``:

* bits come from Philox4x32-10 (Salmon et al., SC'11), keyed by the seed, with the
  counter words ``(tag | high index bits, index >> 1, cell, path)``; one Philox call yields
  128 bits, i.e. two 64-bit words and so two normals (``index`` and ``index ^ 1``);
* a 64-bit word becomes a standard normal through a 256-layer ziggurat
  (Marsaglia & Tsang, 2000). About 99% of words are accepted at once; the rare rejections
  draw further words from the same counter with a retry number in the tag word, so the
  result stays a function of the counter alone.

Because nothing depends on a generator's state, results do not depend on the number of
threads, on how paths are split into blocks, or on the order in which numbers are used;
the same functions work on a GPU (see issue 6).
"""

import math
import sys

import llvmlite.ir
import numba as nb
import numpy as np

__all__ = ["philox4x32", "seed_to_key", "normal_at", "normals_range", "TAG_BITS", "TAG_SGD_NOISE", "TAG_SGD_BATCH", "bits_as_float", "float_as_bits",
           "store_halves", "store_word"]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)

#: bits 0-5 of counter word 0 hold the tag, bits 6-12 the retry number, bit 13 the half.
TAG_BITS = 6
#: Every counter tag in use, in one table (a tag keeps streams of different purposes apart):
#: under the seed's key, 40/41 the Gaussian gradient noise of discrete SGD (first and second SVAG
#: gradient), 42/43 its minibatch indices (sdesim.normalized.sgd_random) and 63 the keys of the
#: Brownian tree's depths (sdesim.brownian.tree, whose own tags live under those keys).
TAG_SGD_NOISE = (40, 41)
TAG_SGD_BATCH = (42, 43)
_RETRY_SHIFT = np.uint64(6)
_HALF_SHIFT = np.uint64(13)
_HIGH_SHIFT = np.uint64(14)


@nb.njit(inline="always", cache=True, fastmath=False)
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block cipher. All inputs are uint64 holding 32-bit values.

    Returns the 128 output bits as two uint64 words ``(c1 << 32 | c0, c3 << 32 | c2)``.
    """
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        n0 = ((p1 >> _S32) ^ c1 ^ k0) & _MASK32
        n2 = ((p0 >> _S32) ^ c3 ^ k1) & _MASK32
        c1 = p1 & _MASK32
        c3 = p0 & _MASK32
        c0 = n0
        c2 = n2
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return (c1 << _S32) | c0, (c3 << _S32) | c2


def seed_to_key(seed):
    """The two 32-bit Philox key words of a seed: a non-negative integer below 2**64 or a
    ``numpy.random.SeedSequence``.

    An integer ``s`` means ``SeedSequence(s)`` (as in ``numpy.random.default_rng``), so
    ``SeedSequence(s).spawn(n)`` gives ``n`` streams independent of ``s`` and of each other.
    """
    if isinstance(seed, np.random.SeedSequence):
        seq = seed
    elif isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer or a numpy.random.SeedSequence, got {seed!r}")
    elif seed < 0 or seed >= 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
    else:
        seq = np.random.SeedSequence(int(seed))
    words = seq.generate_state(2, np.uint32)
    return np.uint64(words[0]), np.uint64(words[1])


# --- ziggurat tables (256 layers, 52-bit mantissa), built here from the defining equations ---
def _ziggurat_tables(n=256):
    r = 3.6541528853610088  # right edge of the base strip for 256 layers
    f = lambda x: math.exp(-0.5 * x * x)
    # common area of each layer: r f(r) + tail mass beyond r (unnormalised density)
    v = r * f(r) + math.sqrt(math.pi / 2.0) * math.erfc(r / math.sqrt(2.0))
    scale = 2.0**52
    k = np.zeros(n, dtype=np.uint64)
    w = np.zeros(n)
    fv = np.zeros(n)
    q = v / f(r)  # width of a rectangle of area v and height f(r) (the base strip)
    k[0] = np.uint64(int((r / q) * scale))
    w[0] = q / scale
    w[n - 1] = r / scale
    fv[0] = 1.0
    fv[n - 1] = f(r)
    x_prev = r
    for i in range(n - 2, 0, -1):
        x = math.sqrt(-2.0 * math.log(v / x_prev + f(x_prev)))
        k[i + 1] = np.uint64(int((x / x_prev) * scale))
        x_prev = x
        fv[i] = f(x)
        w[i] = x / scale
    k[1] = 0
    return k, w, fv, r


_ZK, _ZW, _ZF, _ZR = _ziggurat_tables()
_ZK_SIGNED = _ZK.astype(np.int64)  # the same values (< 2**52): signed compares and conversions are cheaper
_MANT = np.uint64((1 << 52) - 1)
_TO_UNIT = 1.0 / 2.0**53


@nb.njit(inline="always", cache=True, fastmath=False)
def _unit(u):
    """Uniform in (0, 1) from the top 53 bits of a uint64."""
    return ((u >> np.uint64(11)) + 0.5) * _TO_UNIT


@nb.njit(cache=True, fastmath=False)
def _ziggurat_slow(bits, k0, k1, c0, c1, c2, c3, half):
    """Finish a ziggurat draw whose first word ``bits`` was not accepted at once."""
    retry = np.uint64(1)
    while True:
        idx = bits & np.uint64(0xFF)
        sign = (bits >> np.uint64(8)) & np.uint64(1)
        mant = (bits >> np.uint64(9)) & _MANT
        x = mant * _ZW[idx]
        # fresh words for this retry, from the same counter with the retry number
        w0 = c0 | (retry << _RETRY_SHIFT) | (half << _HALF_SHIFT)
        ua, ub = philox4x32(w0, c1, c2, c3, k0, k1)
        retry += np.uint64(1)
        if mant < _ZK[idx]:
            return -x if sign else x
        if idx == 0:  # tail beyond r (Marsaglia's method): repeat inside the tail until accepted
            # (restarting the whole ziggurat on a tail rejection would lose ~7% of the tail mass)
            while True:
                xt = -math.log(_unit(ua)) / _ZR
                yt = -math.log(_unit(ub))
                if yt + yt > xt * xt:
                    return -(_ZR + xt) if sign else _ZR + xt
                w0 = c0 | (retry << _RETRY_SHIFT) | (half << _HALF_SHIFT)
                ua, ub = philox4x32(w0, c1, c2, c3, k0, k1)
                retry += np.uint64(1)
        else:
            if _ZF[idx] + _unit(ua) * (_ZF[idx - 1] - _ZF[idx]) < math.exp(-0.5 * x * x):
                return -x if sign else x
        bits = ub


@nb.njit(inline="always", cache=True, fastmath=False)
def _ziggurat_fast(w):
    """The ziggurat's fast path for word ``w``: the normal, or NaN when the word is rejected.

    Branch-free, so a loop of it vectorises. The mantissa (< 2**52) is converted to float from
    two 26-bit halves: exact, and int32 -> float64 converts on SIMD lanes (int64 -> float64 does
    not with AVX2); ~15% faster than ``np.float64(mant)``, same bits.
    """
    idx = np.intp(w & np.uint64(0xFF))
    mant = np.int64((w >> np.uint64(9)) & _MANT)
    hi = np.int32((w >> np.uint64(35)) & np.uint64(0x3FFFFFF))
    lo = np.int32((w >> np.uint64(9)) & np.uint64(0x3FFFFFF))
    x = (np.float64(hi) * 67108864.0 + np.float64(lo)) * _ZW[idx]
    x = -x if (w >> np.uint64(8)) & np.uint64(1) else x
    return x if mant < _ZK_SIGNED[idx] else np.nan


@nb.njit(inline="always", cache=True, fastmath=False)
def _ziggurat(bits, k0, k1, c0, c1, c2, c3, half):
    x = _ziggurat_fast(bits)
    return _ziggurat_slow(bits, k0, k1, c0, c1, c2, c3, half) if np.isnan(x) else x


@nb.njit(inline="always", cache=True, fastmath=False)
def _counter(tag, pair, cell, path):
    # (the mask changes no value, pair < 2**50; it tells the compiler that c0 fits 32 bits, so
    # Philox multiplies it with a 32-bit multiply on SIMD lanes rather than a 64-bit one: ~10% faster)
    c0 = (np.uint64(tag) | ((np.uint64(pair) >> _S32) << _HIGH_SHIFT)) & _MASK32
    c1 = np.uint64(pair) & _MASK32
    return c0, c1, np.uint64(cell) & _MASK32, np.uint64(path) & _MASK32


@nb.njit(inline="always", cache=True, fastmath=False)
def normal_at(k0, k1, tag, index, cell, path):
    """The standard normal number ``(tag, index)`` of Brownian cell ``cell`` on path ``path``."""
    c0, c1, c2, c3 = _counter(tag, index >> 1, cell, path)
    a, b = philox4x32(c0, c1, c2, c3, k0, k1)
    if index & 1:
        return _ziggurat(b, k0, k1, c0, c1, c2, c3, np.uint64(1))
    return _ziggurat(a, k0, k1, c0, c1, c2, c3, np.uint64(0))


def _bitcast(src, dst):
    """A compiled-only function giving the ``dst`` value with the bit pattern of a ``src`` value
    (no conversion, no instruction)."""
    @nb.extending.intrinsic
    def cast(typingctx, x):
        if x != src:
            return None

        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], context.get_value_type(dst))

        return dst(x), codegen

    return cast


bits_as_float = _bitcast(nb.types.uint64, nb.types.float64)  # uint64 bits -> float64
float_as_bits = _bitcast(nb.types.float64, nb.types.uint64)  # float64 -> its uint64 bits


@nb.extending.intrinsic
def store_halves(typingctx, arr, index, word):
    """Compiled only: ``arr[index]`` (a C-contiguous 1-D float64 array) takes the bits of the uint64
    ``word``, stored as two 32-bit halves in the machine's byte order (the value is the same as
    ``arr[index] = bits_as_float(word)``; the narrower stores let loops use more SIMD lanes).
    No bounds check."""
    if not (isinstance(arr, nb.types.Array) and arr.ndim == 1 and arr.layout == "C"
            and arr.dtype == nb.types.float64 and isinstance(index, nb.types.Integer) and word == nb.types.uint64):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        i32 = llvmlite.ir.IntType(32)
        at = builder.mul(context.cast(builder, args[1], sig.args[1], nb.types.intp), context.get_constant(nb.types.intp, 2))
        base = builder.bitcast(ary.data, i32.as_pointer())
        low = builder.trunc(args[2], i32)
        high = builder.trunc(builder.lshr(args[2], llvmlite.ir.Constant(args[2].type, 32)), i32)
        first, second = (low, high) if sys.byteorder == "little" else (high, low)
        builder.store(first, builder.gep(base, [at]))
        builder.store(second, builder.gep(base, [builder.add(at, context.get_constant(nb.types.intp, 1))]))
        return context.get_dummy_value()

    return nb.types.none(arr, index, word), codegen


def store_word(arr, index, word):
    """``arr[index]`` takes the bits of the uint64 ``word``: by :func:`store_halves` for a
    C-contiguous 1-d float64 array, else by an ordinary store (chosen at compile time by the
    overload below; this body serves interpreted runs)."""
    arr[index] = np.frombuffer(np.uint64(word).tobytes(), dtype=arr.dtype)[0]


@nb.extending.overload(store_word, inline="always")
def _store_word(arr, index, word):
    if isinstance(arr, nb.types.Array) and arr.ndim == 1 and arr.layout == "C" and arr.dtype == nb.types.float64:
        return lambda arr, index, word: store_halves(arr, index, word)
    return lambda arr, index, word: _store_bits(arr, index, word)


@nb.njit(inline="always", cache=True, fastmath=False)
def _store_bits(arr, index, word):
    arr[index] = bits_as_float(word)


@nb.njit(inline="always", cache=True, fastmath=False)
def normals_range(k0, k1, tag, start, count, cell, path, out):
    """Write the normals number ``start .. start+count-1`` of a counter block into ``out[:count]``.

    ``out`` is a float64 array. Equal, number for number, to calling :func:`normal_at` for each
    index. Two branch-free passes the compiler vectorises: the Philox words first (stored in
    ``out`` as raw bits), then the ziggurat's fast path, which marks the ~1.5% of rejected words
    with NaN for a last pass to repair with the full algorithm. No array views are made, so a
    call does no reference counting.
    """
    lead = start & 1
    if lead:
        out[0] = normal_at(k0, k1, tag, start, cell, path)
    n_pairs = (count - lead) >> 1
    first = (start + lead) >> 1
    # two loops, not one with the choice inside: the compiler does not split such a loop, and the
    # merged form ran at half the speed of either
    if n_pairs >= 16:
        for p in range(n_pairs):
            c0, c1, c2, c3 = _counter(tag, first + p, cell, path)
            a, b = philox4x32(c0, c1, c2, c3, k0, k1)
            # each word stored as its two 32-bit halves: the same bits, but the compiler then runs
            # twice as many Philox calls side by side (1.7x faster than storing 64-bit words)
            store_word(out, lead + 2 * p, a)
            store_word(out, lead + 2 * p + 1, b)
    else:  # (short draws, e.g. one node at d = 10: 64-bit stores, whose vector loop starts sooner, are faster)
        for p in range(n_pairs):
            c0, c1, c2, c3 = _counter(tag, first + p, cell, path)
            a, b = philox4x32(c0, c1, c2, c3, k0, k1)
            out[lead + 2 * p] = bits_as_float(a)
            out[lead + 2 * p + 1] = bits_as_float(b)
    n_rejected = 0
    for i in range(lead, lead + 2 * n_pairs):
        x = _ziggurat_fast(float_as_bits(out[i]))
        n_rejected += np.isnan(x)
        out[i] = x
    i = 0
    while n_rejected:  # the rejected words, in order, until all are repaired
        if np.isnan(out[lead + i]):
            c0, c1, c2, c3 = _counter(tag, first + (i >> 1), cell, path)
            a, b = philox4x32(c0, c1, c2, c3, k0, k1)
            w = b if i & 1 else a
            out[lead + i] = _ziggurat_slow(w, k0, k1, c0, c1, c2, c3, np.uint64(i & 1))
            n_rejected -= 1
        i += 1
    if (count - lead) & 1:
        out[count - 1] = normal_at(k0, k1, tag, start + count - 1, cell, path)
