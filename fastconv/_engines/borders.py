"""Border rules understood by every engine (plain integers, so kernels can branch on them).

The plan layer maps each face's vocabulary (scipy.signal, scipy.ndimage,
torch) onto these.  This module imports nothing heavy, so planning never
pulls in Numba; the engines compile :func:`map_index` with the decorator
that suits them (inlined into the direct engine's loops, a called function
in the channel gather).
"""

ZERO = 0  # outside values are 0: taps that read outside are skipped
CONSTANT = 1  # outside values are ``cval``
EDGE = 2  # a a a | a b c d | d d d          (np.pad 'edge')
SYMMETRIC = 3  # b a | a b c d | d c          (np.pad 'symmetric')
REFLECT = 4  # c b | a b c d | c b            (np.pad 'reflect')
WRAP = 5  # c d | a b c d | a b              (np.pad 'wrap')

BY_NAME = {
    "zero": ZERO,
    "constant": CONSTANT,
    "edge": EDGE,
    "symmetric": SYMMETRIC,
    "reflect": REFLECT,
    "wrap": WRAP,
}


def map_index(i, n, border):
    """Map index ``i`` of an axis of length ``n`` through the border rule.

    Returns ``i`` inside the axis, the index it reads outside, or -1 for the
    ZERO and CONSTANT rules outside (the caller supplies 0 or ``cval``).
    """
    if i >= 0 and i < n:
        return i
    if border == EDGE:
        return 0 if i < 0 else n - 1
    if border == WRAP:
        return i % n
    if border == SYMMETRIC:
        period = 2 * n
        i = i % period
        return period - 1 - i if i >= n else i
    if border == REFLECT:
        if n == 1:
            return 0
        period = 2 * n - 2
        i = i % period
        return period - i if i >= n else i
    return -1


def map_indices(i, n, border):
    """:func:`map_index` of every index in the int64 array ``i`` (NumPy, for tables built in Python)."""
    import numpy as np

    inside = (i >= 0) & (i < n)
    if border == EDGE:
        mapped = np.clip(i, 0, n - 1)
    elif border == WRAP:
        mapped = i % n
    elif border == SYMMETRIC:
        mapped = i % (2 * n)
        mapped = np.where(mapped >= n, 2 * n - 1 - mapped, mapped)
    elif border == REFLECT and n > 1:
        mapped = i % (2 * n - 2)
        mapped = np.where(mapped >= n, 2 * n - 2 - mapped, mapped)
    elif border == REFLECT:
        mapped = np.zeros_like(i)
    else:
        mapped = np.full_like(i, -1)
    return np.where(inside, i, mapped)
