"""The training engine — without a UI; TensorFlow is imported lazily inside the functions that train.

`events` (the log and RunState), `run` (a Run: prepare, start, the fit loop, finish), `controls`
(pause/unpause/stop/set between batches), `checkpoints` (the last/best/backup policy), `callbacks`
(the thin Keras callbacks a Run adds), `control` (reaching a runner process), `strategy`
(tf.distribute), `runs` (the runs in a folder).
"""
