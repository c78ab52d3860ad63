"""Border rules understood by every engine (plain integers, so kernels can branch on them).

The plan layer maps each face's vocabulary (scipy.signal, scipy.ndimage,
torch) onto these.  This module imports nothing heavy, so planning never
pulls in Numba.
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
