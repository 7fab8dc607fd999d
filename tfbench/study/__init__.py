"""Hyperparameter studies (`tfbench tune`): the search space, the Optuna study and the trial workers.

Each trial is an ordinary run directory inside the study directory. Only `workers` imports
TensorFlow, and only inside a worker process; Optuna is imported where a study is opened.
"""
