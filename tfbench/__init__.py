"""tfbench: a terminal workbench for training TensorFlow/Keras models."""

__version__ = "0.1.0"
