"""Inside a trained model: activations and the journey, attribution (why), filter
portraits.
"""
