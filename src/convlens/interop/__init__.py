"""Other frameworks' model files, in and out: Keras (.keras, .h5) and ONNX.

Each importer turns a file into a convlens Sequential spec plus its weights
(``ImportedModel``) without running anything from the file, checking every
size the file declares before allocating it (limits.py).
"""
