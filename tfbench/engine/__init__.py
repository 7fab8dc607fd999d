"""The training engine — without a UI; TensorFlow is imported lazily inside the functions that train.

`events` (the log and RunState), `run` (a Run and its training thread), `control` (reaching a
runner process), `callbacks` (the Keras callbacks a Run adds), `strategy` (tf.distribute).
"""
