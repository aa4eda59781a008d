"""The lesson's arithmetic in NumPy: convolution, pooling, one pixel explained, and
the built-in picture.
"""
