"""Training: fit and the run it writes, recipes, plans, and the parts of the loop
(optimiser, weight average, selective backprop, precision, checkpoints, processes).
"""
