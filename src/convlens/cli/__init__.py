"""The ``convlens`` command: one module per topic, gathered by main.
"""
