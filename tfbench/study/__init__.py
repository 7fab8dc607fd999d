"""Hyperparameter studies (`tfbench tune`): the search space, the Optuna study and the trial workers.

Each trial is an ordinary run directory inside the study directory. Only `workers` imports
TensorFlow, and only inside a worker process; Optuna is imported where a study is opened.
"""

# The most trials a study may plan (`--trials`, `[tune] trials`): more is a typo, or a number no
# study reaches. Here, so the command line checks it without importing the rest.
MAX_TRIALS = 1_000_000
