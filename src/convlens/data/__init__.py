"""Datasets: Fashion-MNIST, MNIST and folders of your own images, as uint8 arrays.
"""
