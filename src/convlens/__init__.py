"""convlens: convolutional neural networks on small images, real, fast and visible."""

from convlens.errors import ConvlensError

__version__ = "0.1.0"

__all__ = ["ConvlensError", "__version__"]
