"""Models: layer specs, the Sequential spec and its summary, presets, model files,
receptive fields (no torch), and the torch network built from a spec.
"""
