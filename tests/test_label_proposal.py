"""The label proposal for a table without one: real files and generated ones, each proposal with its reason.

Real tables other than penguins.csv (tests/fixtures/tables, see its README: datasets shipped in
packages, each with its known label) check that the ranking holds beyond the file it was made for.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tfbench.data.label_proposal import LabelCandidate, normalised, propose, rank_columns

TABLES = Path(__file__).parent / "fixtures" / "tables"


@pytest.mark.parametrize(
    ("file", "label", "reason"),
    [
        ("penguins.csv", "species", "named like a label"),  # not `year`, its last column
        ("titanic.csv", "survived", "named like a label"),  # `class` is named like one too: the later wins
        ("iris.csv", "Species", "named like a label"),
        ("biopsy.csv", "class", "named like a label"),
        ("boston.csv", "medv", "named like a label"),
        ("pima-tr.csv", "type", "few distinct values: 2"),
        ("seattle-weather.csv", "weather", "few distinct values: 5"),
        ("stocks.csv", "price", "named like a label"),
    ],
)
def test_real_tables_get_their_label_proposed_with_a_reason(file, label, reason):
    proposal = propose(str(TABLES / file), "csv")[0]
    assert proposal == LabelCandidate(label, reason)


def test_penguins_ranks_names_then_few_values_then_the_last_column():
    ranked = propose(str(TABLES / "penguins.csv"), "csv")
    assert [(c.column, c.reason) for c in ranked] == [
        ("species", "named like a label"),
        ("sex", "few distinct values: 2"),
        ("island", "few distinct values: 3"),
        ("year", "the last column"),
    ]


def test_a_table_with_nothing_to_go_on_proposes_its_last_column():
    table = pa.table({"a": [float(i) for i in range(30)], "b": [i % 7 for i in range(30)], "c": [1.5, 2.5] * 15})
    assert rank_columns(table) == [LabelCandidate("c", "the last column")]


def test_columns_that_cannot_be_a_label_are_never_proposed():
    rows = 30
    table = pa.table(
        {
            "target": ["same"] * rows,  # one value: nothing to learn
            "kind": ["a", "b", "c"] * 10,
            "id": [f"row-{i}" for i in range(rows)],  # unique per row
            "when": pa.array([None] * rows, pa.timestamp("s")),
            "notes": pa.array([None] * rows, pa.null()),  # a column with no values, last
        }
    )
    assert rank_columns(table) == [LabelCandidate("kind", "few distinct values: 3")]


def test_a_strong_label_word_beats_a_dataset_label_name_and_names_are_normalised():
    table = pa.table({"Target Class": [0, 1] * 10, "price": [1.0, 2.0, 3.0, 4.0] * 5, "x": [0.5] * 20})
    assert rank_columns(table)[0] == LabelCandidate("Target Class", "named like a label")
    assert normalised("Sale Price") == "sale_price" and normalised("isFraud") == "isfraud"


def test_text_with_many_values_is_not_few_values():
    table = pa.table({"city": [f"c{i % 15}" for i in range(20)], "v": [float(i) for i in range(20)]})
    assert rank_columns(table) == [LabelCandidate("v", "the last column")]
