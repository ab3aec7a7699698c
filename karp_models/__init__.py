"""karp: small CNN, RNN and attention models to train and look inside, for teaching deep learning."""

__version__ = "0.1.0"
