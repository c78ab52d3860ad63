"""fastconv: fast convolution and cross-correlation for any array library.

The signal-processing face (``scipy.signal`` semantics) is re-exported here::

    import fastconv
    fastconv.convolve(a, v)        # like scipy.signal.convolve / numpy.convolve
    fastconv.correlate(a, v)       # cross-correlation: no flip, conj(v)

The image-filtering face (``scipy.ndimage`` semantics) is the submodule
``fastconv.ndimage``::

    fastconv.ndimage.correlate(image, kernel, mode="reflect")

CNN layers (``torch.nn.functional`` semantics, no autograd) are the submodule
``fastconv.nn``::

    fastconv.nn.conv2d(input, weight, bias, stride=2, padding=1, groups=1)

Importing fastconv compiles nothing: Numba kernels are compiled (or loaded
from the on-disk cache) on first use.
"""

from ._config import get_num_threads, set_num_threads
from ._auto import calibrate, choose_method
from .signal import convolve, convolve2d, correlate, correlate2d, fftconvolve, oaconvolve
from . import ndimage
from . import nn

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "convolve",
    "correlate",
    "convolve2d",
    "correlate2d",
    "fftconvolve",
    "oaconvolve",
    "choose_method",
    "calibrate",
    "get_num_threads",
    "set_num_threads",
    "ndimage",
    "nn",
]
