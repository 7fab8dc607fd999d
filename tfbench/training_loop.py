"""The training part of `tfbench code --loop`: `fit` written out as a `tf.GradientTape` loop — without TensorFlow.

The rest of the script (data, pipeline, model) is `tfbench.codegen`'s, so the loop reads the same
batches in the same order as `train.py` and starts from the same weights. Each step does what
Keras' own `train_step` does: the loss plus the model's own losses (regularisers) under a tape, the
gradients applied by the same optimizer, the loss averaged over the epoch by batch size, the
metrics updated on the predictions; validation does it without the tape. Both steps are
`tf.function`s, compiled with XLA when `fit` would (Keras' rule for `jit_compile = "auto"`), so the
loop ends on `train.py`'s validation loss.
"""

from __future__ import annotations

from typing import Any

from tfbench import user_code
from tfbench.errors import UserError


def _rule(title: str) -> str:
    text = f"# -- {title} "
    return text + "-" * (79 - len(text))


def check_loop(exp: Any, streamed: bool) -> None:
    """Refuse what the written loop does not do (fit's extras), naming the setting.

    Raises:
        UserError: at the setting the loop cannot follow.
    """
    train = exp.train
    refusals = [
        (exp.model.class_ is not None, "model.class", "its own train_step is the loop; use the fit script"),
        (bool(exp.model.inputs or exp.model.outputs), "model.outputs", "the fit script weighs several outputs"),
        (train.mixed_precision != "off", "train.mixed_precision", "set it to off for the loop"),
        (train.strategy in ("mirrored", "multi_worker"), "train.strategy", "the loop runs on one device"),
        (train.fine_tune is not None, "train.fine_tune", "the fit script writes the two phases"),
        (train.class_weight is not None, "train.class_weight", "the fit script weighs the classes"),
        (train.steps_per_execution != 1, "train.steps_per_execution", "the loop runs one batch a step"),
        (streamed, "data.source", "a streamed table is read by the fit script"),
    ]
    for refused, where, hint in refusals:
        if refused:
            raise UserError(
                "`tfbench code --loop` writes a plain training loop, which this setting needs more than", where, hint
            )


def _object(kind: str, value: Any, loss: Any) -> str:
    """A loss or metric as an object of its own (`keras.losses.SparseCategoricalCrossentropy()`)."""
    from tfbench import catalog
    from tfbench.data.labels import loss_family

    if isinstance(value, str):
        entry = catalog.get(kind, value)
        name = entry.name if entry is not None else value
        if entry is not None and entry.category == catalog.IDENTIFIER_CATEGORY:  # accuracy, ce: by the labels
            family = loss_family(loss) or "sparse"
            stem = "Accuracy" if kind == "metrics" else "Crossentropy"
            name = {"sparse": "SparseCategorical", "one_hot": "Categorical", "binary": "Binary"}[family] + stem
        label = f'name="{value}"' if kind == "metrics" else ""
        return f"{user_code.qualified(kind, name, f'keras.{kind}.{name}')}({label})"
    args = ", ".join(f"{k}={v!r}" for k, v in value.items() if k != "type")
    return f"{user_code.qualified(kind, value['type'], 'keras.' + kind + '.' + value['type'])}({args})"


def main_section(exp: Any, loss: Any, metrics: list, code: Any) -> str:
    """`main()`: the data and model as train.py makes them, then the explicit loop."""
    check_loop(exp, code.streamed)
    train, data = exp.train, exp.data
    split = (lambda name: f', split="{name}"') if data.cache_file else (lambda name: "")
    args = {k: repr(v) for k, v in train.optimizer.args.items()}
    if train.schedule is not None:  # the schedule is the learning rate, as tfbench builds it
        schedule_args = ", ".join(f"{k}={v!r}" for k, v in train.schedule.args.items())
        args["learning_rate"] = f"keras.optimizers.schedules.{train.schedule.type}({schedule_args})"
    optimizer = f"keras.optimizers.{train.optimizer.type}(" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"
    jit = (
        "supports_xla(model)"
        if train.jit_compile == "auto" and not train.deterministic
        else repr(train.jit_compile is True)
    )
    lines = _main_head()
    if train.seed is not None:
        lines.append("    keras.utils.set_random_seed(SEED)  # Python, NumPy and TensorFlow")
    if train.deterministic:
        lines.append("    tf.config.experimental.enable_op_determinism()")
    lines.append("    train, validation, test = split(load_data())")
    lines.extend(code.after_split)
    lines += [
        f"    train_ds = to_dataset(train, training=True{split('train')})",
        "    validation_ds = None if validation is None else "
        f"to_dataset(validation, training=False{split('validation')})",
        "",
        "    model = build_model()",
        "    model.summary()",
        '    print(f"params: {model.count_params()}")',
        f"    optimizer = {optimizer}",
        f"    loss_fn = {_object('losses', loss, loss)}",
        '    loss_mean = keras.metrics.Mean(name="loss")  # the epoch\'s loss, averaged by batch size as fit does',
        f"    train_metrics = [{', '.join(_object('metrics', m, loss) for m in metrics)}]",
        f"    val_metrics = [{', '.join(_object('metrics', m, loss) for m in metrics)}]",
        '    val_loss_mean = keras.metrics.Mean(name="loss")',
    ]
    lines += _steps(jit) + _epochs(exp)
    lines.extend(code.before_save)
    lines += [
        "    model.save(args.output)",
        '    print(f"saved {args.output}")',
        "",
        "",
        'if __name__ == "__main__":',
        "    main()",
    ]
    return "\n".join(lines)


def _main_head() -> list[str]:
    """Keras' XLA rule as a function of the script, then `main()` and its arguments, as train.py has them."""
    return [
        _rule("training: an explicit tf.GradientTape loop, as fit runs it"),
        "def supports_xla(model):",
        '    """Keras\' rule for jit_compile="auto": XLA on an accelerator, when every layer supports it."""',
        '    accelerators = [d for d in tf.config.list_physical_devices() if d.device_type != "CPU"]',
        '    return bool(accelerators) and all(getattr(layer, "supports_jit", True) for layer in model.layers)',
        "",
        "",
        "def main():",
        "    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])",
        '    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs to train (default: %(default)s)")',
        '    parser.add_argument("--output", default="model.keras", help="where to save the trained model")',
        "    args = parser.parse_args()",
        "",
    ]


def _steps(jit: str) -> list[str]:
    return [
        "",
        f"    @tf.function(jit_compile={jit})",
        "    def train_step(x, y):",
        "        with tf.GradientTape() as tape:",
        "            y_pred = model(x, training=True)",
        "            loss = loss_fn(y, y_pred) + sum(model.losses)  # model.losses: the regularisers' terms",
        "        gradients = tape.gradient(loss, model.trainable_weights)",
        "        optimizer.apply_gradients(zip(gradients, model.trainable_weights))",
        "        loss_mean.update_state(loss, sample_weight=tf.shape(y)[0])",
        "        for metric in train_metrics:",
        "            metric.update_state(y, y_pred)",
        "",
        f"    @tf.function(jit_compile={jit})",
        "    def test_step(x, y):",
        "        y_pred = model(x, training=False)",
        "        val_loss_mean.update_state(loss_fn(y, y_pred) + sum(model.losses), sample_weight=tf.shape(y)[0])",
        "        for metric in val_metrics:",
        "            metric.update_state(y, y_pred)",
    ]


def _epochs(exp: Any) -> list[str]:
    callbacks = _callback_objects(exp)
    lines = [
        "",
        "    # The callbacks fit would call, called by hand; `model.optimizer` is the one they adjust.",
        "    model.optimizer = optimizer",
        f"    callbacks = keras.callbacks.CallbackList([{', '.join(callbacks)}], model=model)",
        "    # One pass of the repeated training data per epoch, as fit reads it in train.py.",
        "    steps = int(train_ds.cardinality())",
        "    batches = iter(train_ds.repeat())",
        "    model.stop_training = False",
        "    callbacks.on_train_begin()",
        "    for epoch in range(args.epochs):",
        "        callbacks.on_epoch_begin(epoch)",
        "        for tracker in [loss_mean, *train_metrics, val_loss_mean, *val_metrics]:",
        "            tracker.reset_state()",
        "        for _ in range(steps):",
        "            train_step(*next(batches))",
        "        logs = {m.name: float(m.result()) for m in [loss_mean, *train_metrics]}",
        "        if validation_ds is not None:",
        "            for x, y in validation_ds:",
        "                test_step(x, y)",
        '            logs.update({"val_" + m.name: float(m.result()) for m in [val_loss_mean, *val_metrics]})',
        '        print(f"Epoch {epoch + 1}/{args.epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))',
        "        callbacks.on_epoch_end(epoch, logs)",
        "        if model.stop_training:",
        "            break",
        "    callbacks.on_train_end()",
    ]
    if exp.data.test:
        lines += [
            "    if test is not None:",
            "        val_loss_mean.reset_state()",
            "        for x, y in to_dataset(test, training=False):",
            "            test_step(x, y)",
            '        print("test loss:", float(val_loss_mean.result()))',
        ]
    return lines


def _callback_objects(exp: Any) -> list[str]:
    found = []
    for component in exp.train.callbacks:
        args = dict(component.args)
        if component.type == "ModelCheckpoint":
            args.setdefault("filepath", "checkpoints/model-{epoch:03d}.keras")
        elif component.type == "CSVLogger":
            args.setdefault("filename", "keras-log.csv")
        elif component.type in ("TensorBoard", "BackupAndRestore"):
            continue  # they need fit's own bookkeeping
        text = ", ".join(f"{k}={v!r}" for k, v in args.items())
        found.append(f"{user_code.qualified('callbacks', component.type, 'keras.callbacks.' + component.type)}({text})")
    return found
