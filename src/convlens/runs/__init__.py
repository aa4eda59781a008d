"""Run directories: written, read back with their dataset and test split, evaluated,
and used to predict.
"""
