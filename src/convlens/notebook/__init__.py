"""Python for notebooks and scripts: the workflows a person calls (train, import, evaluate).

The names a user imports are gathered in convlens/__init__.py.
"""
