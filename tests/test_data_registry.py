"""A data-source kind is one module behind `tfbench.data.registry`: a test-only kind proves it.

The kind below is a module written here and registered with one `SOURCES` entry; `describe`,
`load`, the dataset picker's lists and `tfbench code` then know it without any other change.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from tfbench.data import registry

TOY_SOURCE = '''
"""`toy:N` — N points on a line, for the registry test."""
import numpy as np
from tfbench.data.info import DataInfo
from tfbench.data.options import SourceOptions
from tfbench.data.registry import LoaderCode, Picker
from tfbench.data.splits import Arrays, planned_sizes, split_arrays

OPTIONS = SourceOptions
PICKER = Picker("toy lines", "toy:N", suffixes=(".toy",))


def _arrays(spec):
    n = int(spec.target)
    x = np.linspace(0, 1, n, dtype=np.float32).reshape(n, 1)
    return Arrays(x, (x[:, 0] > 0.5).astype(np.int32))


def describe(spec, options, seed=42):
    return DataInfo(source=spec.source, input_shape=(1,), label_kind="binary", num_classes=2,
                    class_names=["low", "high"], sizes=planned_sizes(spec, {"train": int(spec.target)}))


def load(spec, options, seed=42):
    return split_arrays(spec, {"train": _arrays(spec)}, seed)


def loader_code(exp, info):
    return LoaderCode(f"""def load_data():
    x = np.linspace(0, 1, {int(exp.data.target)}, dtype=np.float32).reshape(-1, 1)
    return {{"train": (x, (x[:, 0] > 0.5).astype(np.int32))}}""")
'''


@pytest.fixture
def toy_kind(monkeypatch):
    module = types.ModuleType("tfbench_test_toy_kind")
    exec(compile(TOY_SOURCE, "toy_kind.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(registry.SOURCES, "toy", module.__name__)  # the one registry line
    return module


def test_a_registered_kind_is_described_loaded_listed_and_written_out(toy_kind):
    from tfbench import data
    from tfbench.codegen import generate_script
    from tfbench.spec import experiment_from_dict

    exp = experiment_from_dict(
        {
            "name": "toy",
            "data": {"source": "toy:50", "batch_size": 8},
            "model": {"layers": [{"type": "Dense", "units": 2, "activation": "softmax"}]},
        }
    )
    info = data.describe(exp.data)
    assert info.class_names == ["low", "high"] and info.sizes == {"train": 40, "validation": 10}
    splits = toy_kind.load(exp.data, None)
    assert len(splits.train) == 40 and np.all(splits.train.x[:, 0] <= 1)
    assert "toy" in registry.file_kinds()
    assert registry.kind_for_path("points.toy") == "toy"
    assert "toy:N" in registry.source_forms()
    script = generate_script(exp)
    namespace: dict = {"__name__": "generated"}
    exec(compile(script, "train.py", "exec"), namespace)
    train, validation, _ = namespace["split"](namespace["load_data"]())
    assert len(train[1]) == 40 and len(validation[1]) == 10


def test_an_unknown_kind_names_the_closest():
    from tfbench.errors import UserError

    with pytest.raises(UserError) as caught:
        registry.source_module("parqet")
    assert "data.source" in str(caught.value)


def test_the_picker_reads_its_groups_from_the_registry():
    assert [kind for kind, _ in registry.listed_groups()] == ["builtin", "keras", "tfds"]
    assert set(registry.file_kinds()) >= {"csv", "npz", "images", "text"}
    assert registry.kind_for_path("x.npz") == "npz"
