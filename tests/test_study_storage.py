"""A study's storage as a clumsy or unlucky user meets it, in this process: a journal cut short or
damaged, a `study.toml` that is not one, a `--storage` that cannot be opened, a stored study joined
from a preset that searches something else, and command-line values that make no sense. Each is one
`error:` line (exit 2), never a traceback, and leaves no half-made study behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tfbench.cli import cli
from tfbench.spec import load_experiment
from tfbench.study.study import StudyDir

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from write_study import write_study  # noqa: E402

NAME = "digits-mlp-study"  # the recorded study's name in its journal


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_error_line(result, *words: str) -> str:
    """The result is exit 2 with one `error:` line holding `words`, and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def journal_lines(path: Path) -> list[dict]:
    """Every line of a journal, decoded; fails on a cut or damaged one."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), data[-80:]
    return [json.loads(line) for line in data.splitlines()]


def trials_seen(study_dir: Path) -> dict[int, tuple]:
    return {t.number: (t.state.name, t.value, t.params) for t in StudyDir.load(study_dir, 40).trials()}


# -- a journal cut short --------------------------------------------------------------------------


def test_a_journal_cut_anywhere_in_its_end_is_repaired_before_the_next_write_and_keeps_every_whole_record(tmp_path):
    study_dir = write_study(tmp_path / "study")
    journal = study_dir / "study.journal"
    last_line = len(journal.read_bytes().splitlines(keepends=True)[-1])
    # a byte, `truncate -s -37`, all but a byte of the last record, and into the record before it
    for cut in (1, 37, last_line - 1, last_line + 20):
        journal.write_bytes(journal.read_bytes()[:-cut])
        before = trials_seen(study_dir)  # what a reader sees of the cut journal
        study = StudyDir.load(study_dir, 40)
        trial = study.next_trial()  # a worker's first writes: ask, host, pid
        study.study.tell(trial, 0.5)
        lines = journal_lines(journal)  # whole lines only: nothing appended to the cut one
        assert all(isinstance(line, dict) and "op_code" in line for line in lines)
        after = trials_seen(study_dir)
        assert {n: after[n] for n in before} == before, cut
        assert after[trial.number] == ("COMPLETE", 0.5, trial.params)


# -- damaged files ----------------------------------------------------------------------------------


def damage_journal_garbage_line(study_dir: Path) -> None:
    with open(study_dir / "study.journal", "ab") as handle:
        handle.write(b"garbage, not a record\n")


def damage_journal_random_bytes_inside(study_dir: Path) -> None:
    path = study_dir / "study.journal"
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 24] = bytes(range(200, 224))
    path.write_bytes(bytes(data))


def damage_journal_json_not_a_record(study_dir: Path) -> None:
    with open(study_dir / "study.journal", "ab") as handle:
        handle.write(b'[1, 2, 3]\n{"op_code": 99, "worker_id": "x"}\n')


def damage_journal_garbage_tail(study_dir: Path) -> None:
    with open(study_dir / "study.journal", "ab") as handle:
        handle.write(os.urandom(64).replace(b"\n", b"."))


def damage_study_file(text: str | bytes):
    def damage(study_dir: Path) -> None:
        path = study_dir / "study.toml"
        if isinstance(text, bytes):
            path.write_bytes(path.read_bytes()[:200] + text)
        else:
            old = path.read_text()
            key = text.split(" =")[0]
            path.write_text("\n".join(text if line.startswith(f"{key} =") else line for line in old.splitlines()))

    return damage


DAMAGE = {
    "journal: a garbage line appended": (damage_journal_garbage_line, "study.journal: line"),
    "journal: random bytes inside": (damage_journal_random_bytes_inside, "study.journal: line"),
    "journal: JSON that is no record": (damage_journal_json_not_a_record, "study.journal: line"),
    "journal: garbage at its end": (damage_journal_garbage_tail, "study.journal: line"),
    "study.toml: binary bytes": (damage_study_file(os.urandom(64) + b"\xff\xfe"), "study.toml"),
    "study.toml: storage = 42": (damage_study_file("storage = 42"), "study.storage"),
    "study.toml: trials = 'x'": (damage_study_file('trials = "x"'), "study.trials"),
    "study.toml: name = []": (damage_study_file("name = []"), "study.name"),
    "study.toml: empty": (lambda d: (d / "study.toml").write_text(""), "study.toml"),
}


def test_a_damaged_journal_or_study_file_is_one_error_line_in_runs_resume_and_watch(tmp_path):
    for number, (what, (damage, where)) in enumerate(DAMAGE.items()):
        study_dir = write_study(tmp_path / f"study{number}")
        damage(study_dir)
        for command in (["runs"], ["tune", "--resume"], ["watch"], ["runs", "--json"]):
            args = [command[0], str(study_dir), *command[1:]] if command[0] == "runs" else [*command, str(study_dir)]
            line = one_error_line(invoke(*args), where)
            assert "Traceback" not in line, (what, command)


def test_a_damaged_journal_names_the_intact_length_that_truncate_keeps(tmp_path):
    study_dir = write_study(tmp_path / "study")
    journal = study_dir / "study.journal"
    whole = journal.read_bytes()
    damage_journal_garbage_line(study_dir)
    records = len(whole.splitlines())
    line = one_error_line(invoke("runs", str(study_dir)), f"line {records + 1}:", f"the {records} records before it")
    assert f"truncate -s {len(whole)} " in line
    journal.write_bytes(whole)  # what the advice does
    assert invoke("runs", str(study_dir)).exit_code == 0


# -- a --storage that cannot be opened ----------------------------------------------------------------


def test_a_storage_that_cannot_be_opened_is_one_error_line_and_leaves_no_study_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study_dir = write_study(tmp_path / "recorded")
    table = tmp_path / "penguins.csv"
    table.write_text("species,island\nAdelie,Torgersen\n")
    lone = tmp_path / "notes.txt"
    lone.write_text("one line without its newline")
    storages = {
        "garbage://x": "unknown kind of storage 'garbage'",
        f"sqlite:///{tmp_path}/missing/folder/x.db": "cannot open the database",
        "mysql://user:secret@localhost/optuna": "driver for mysql is not installed",
        str(table): "not an Optuna journal",
        str(lone): "not an Optuna journal",
        f"sqlite:///{study_dir / 'study.journal'}": "file is not a database",
        "sqlite://": "in-memory",
        str(tmp_path): "cannot open the study storage",
    }
    for storage, words in storages.items():
        for study_dir_args in (["--study-dir", str(tmp_path / "new")], []):
            result = invoke("tune", "digits-mlp", "--storage", storage, "--trials", "2", *study_dir_args)
            line = one_error_line(result, "--storage", words)
            assert "secret" not in line
            assert not (tmp_path / "new").exists() and not (tmp_path / "studies").exists(), storage
    assert table.read_text() == "species,island\nAdelie,Torgersen\n"  # a file that is no journal stays as it was
    assert lone.read_text() == "one line without its newline"


# -- joining a stored study --------------------------------------------------------------------------


SHIPPED = (Path(__file__).resolve().parent.parent / "presets" / "digits-mlp.toml").read_text()
UNITS = '"model.layers[2].units" = { int = [16, 128], step = 16 }'


def preset_changed(folder: Path, name: str, old: str, new: str) -> str:
    """The shipped digits-mlp preset with one line changed, written as `folder/name.toml`."""
    assert old in SHIPPED
    path = folder / f"{name}.toml"
    path.write_text(SHIPPED.replace(old, new))
    return str(path)


def test_joining_a_stored_study_that_searches_something_else_exits_2_naming_what_differs(tmp_path):
    study_dir = write_study(tmp_path / "recorded")
    journal = str(study_dir / "study.journal")
    best = (study_dir / "best.toml").read_text()
    joins = {
        ("objective", 'objective = "val_accuracy"', 'objective = "val_loss"'): [
            "objective val_accuracy there, val_loss here",
            "direction maximize there, minimize here",
        ],
        ("direction", 'objective = "val_accuracy"', 'objective = "val_accuracy"\ndirection = "min"'): [
            "direction maximize there, minimize here"
        ],
        ("range", UNITS, UNITS.replace("128", "64")): ['space "model.layers[2].units" {"int": [16, 128]'],
        ("more", UNITS, UNITS + '\n"model.layers[4].units" = { choice = [10] }'): [
            'space "model.layers[4].units" only here'
        ],
        ("fewer", UNITS, ""): ['space "model.layers[2].units" only there'],
    }
    for (name, old, new), words in joins.items():
        joined = tmp_path / "joined"
        result = invoke(
            "tune", preset_changed(tmp_path, name, old, new), "--set", "train.epochs=5", "--trials", "12",
            "--storage", journal, "--study", NAME, "--study-dir", str(joined),
        )  # fmt: skip
        one_error_line(result, f"the stored study '{NAME}' searches something else", *words)
        assert not joined.exists(), name
    assert (study_dir / "best.toml").read_text() == best
    # the same search joins: nothing is left to run, and best.toml names the stored best trial
    result = invoke(
        "tune", "digits-mlp", "--set", "train.epochs=5", "--trials", "12",
        "--storage", journal, "--study", NAME, "--study-dir", str(tmp_path / "same"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "same" / "best.toml").read_text().startswith(f"# The best trial of study {NAME}: #4, ")


def test_joining_a_study_optuna_stored_without_a_record_checks_its_direction_and_distributions(tmp_path):
    import optuna

    from tfbench.study.space import parse_tune
    from tfbench.study.storage import open_storage

    journal = str(tmp_path / "plain.journal")
    experiment = load_experiment("digits-mlp", ["train.epochs=1"])
    params = parse_tune(experiment).params
    plain = optuna.create_study(storage=open_storage(journal), study_name="plain", direction="maximize")
    plain.add_trial(
        optuna.trial.create_trial(
            value=0.9,
            params={p.path: (p.low if p.kind != "choice" else p.choices[0]) for p in params},
            distributions={p.path: p.distribution() for p in params},
        )
    )
    args = ["tune", "digits-mlp", "--set", "train.epochs=1", "--trials", "1", "--storage", journal, "--study", "plain"]
    one_error_line(invoke(*args, "--set", 'tune.direction="min"', "--study-dir", str(tmp_path / "a")), "direction")
    rate = '"model.layers[3].rate" = { float = [0.0, 0.5] }'
    narrower = preset_changed(tmp_path, "narrower", rate, rate.replace("0.5", "0.3"))
    one_error_line(
        invoke("tune", narrower, *args[2:], "--study-dir", str(tmp_path / "b")), 'space "model.layers[3].rate" differs'
    )
    assert invoke(*args, "--study-dir", str(tmp_path / "c")).exit_code == 0  # the same search: recorded now
    assert optuna.load_study(study_name="plain", storage=open_storage(journal)).user_attrs["tfbench_search"]


# -- values that make no sense --------------------------------------------------------------------------


def test_gpu_ids_and_trial_counts_that_make_no_sense_are_refused_before_a_study_is_made(tmp_path, monkeypatch):
    from tfbench.study.workers import gpu_ids

    monkeypatch.chdir(tmp_path)
    for gpus in ("abc", "0,,1", "", "-1", "0;1", "GPU-", "1e3"):
        result = invoke("tune", "digits-mlp", "--gpus", gpus, "--trials", "1", "--set", "train.epochs=1")
        one_error_line(result, "--gpus")
    for trials in ("1" + "0" * 30, "18446744073709551617", "1000001"):
        result = invoke("tune", "digits-mlp", "--trials", trials)
        assert result.exit_code == 2 and "--trials" in result.output and "Traceback" not in result.output
    result = invoke("tune", "digits-mlp", "--set", "tune.trials=100000000000000000000")
    one_error_line(result, "tune.trials", "from 1 to 1,000,000")
    assert not (tmp_path / "studies").exists()
    assert gpu_ids("0, 1,3") == ["0", "1", "3"]
    assert gpu_ids("GPU-8a3f0c2e-1b2c-4d5e-8f90-0123456789ab,MIG-4a1b2c3d") == [
        "GPU-8a3f0c2e-1b2c-4d5e-8f90-0123456789ab",
        "MIG-4a1b2c3d",
    ]


def test_a_grid_plans_no_more_trials_than_it_has_points(tmp_path):
    from tfbench.study.space import parse_tune

    grid = ["tune.sampler=grid", 'tune.space={"model.layers[2].units"={choice=[16,32]}}']
    settings = parse_tune(load_experiment("digits-mlp", grid), 5)
    assert settings.trials == 2 and settings.notes == ["the grid has 2 points: 2 trials, not 5"]
    assert parse_tune(load_experiment("digits-mlp", grid), 2).notes == []


@pytest.mark.parametrize("cut", [0, 5, 11, 40])
def test_a_kill_in_the_middle_of_the_first_record_leaves_a_journal_the_next_writer_repairs(tmp_path, cut):
    """A journal whose only content is the start of a record (a writer killed at once) is no damage."""
    journal = tmp_path / "study.journal"
    journal.write_bytes(b'{"op_code":0,"worker_id":"a-1","study_name":"x","directions":[1]}\n'[:cut])
    experiment = load_experiment("digits-mlp", ["train.epochs=1"])
    study = StudyDir.create(None, tmp_path / "s", experiment, 2, str(journal), "x")
    assert study.trials() == [] and journal_lines(journal)[0]["op_code"] == 0


# -- a journal on a disk that fills ---------------------------------------------------------------------

# On a 1 MB tmpfs: a new study, the disk filled to the last byte, then records of SIZE bytes written
# until one does not fit; the space freed, one more record, and the study read again afresh.
FILL_A_JOURNAL = """
import json, os, sys
from pathlib import Path
from tfbench.spec import load_experiment
from tfbench.study.study import StudyDir

disk, out = Path(sys.argv[1]), []
for size in [int(s) for s in sys.argv[2].split(",")]:
    study = StudyDir.create(None, disk / f"s{size}", load_experiment("digits-mlp"), 2, None, None)
    try:
        with open(disk / "filler", "wb") as filler:
            while True:
                filler.write(bytes(4096))
                filler.flush()
    except OSError:
        pass
    written, code = 0, None
    try:
        while True:
            study.study.set_user_attr(f"k{written}", "x" * size)
            written += 1
    except OSError as exc:
        code = exc.errno
    whole = (disk / f"s{size}" / "study.journal").read_bytes().endswith(b"\\n")
    os.unlink(disk / "filler")
    study.study.set_user_attr("after", True)
    try:
        kept = sorted(StudyDir.load(disk / f"s{size}").study.user_attrs)
    except Exception as exc:
        kept = repr(exc)
    out.append({"size": size, "written": written, "errno": code, "whole": whole, "kept": kept})
print(json.dumps(out))
"""


def test_a_journal_write_the_disk_cannot_hold_is_cut_back_and_the_journal_reads_whole_once_space_is_freed(tmp_path):
    from test_faults import needs_a_small_tmpfs
    from tiny_runs import runner_env

    needs_a_small_tmpfs()
    disk = tmp_path / "disk"
    disk.mkdir()
    sizes = "10,300,1500,3000,9000"  # a record ending inside the journal's last page, or past several
    script = f"mount -t tmpfs -o size=1m tmpfs {disk} && {sys.executable} -c '{FILL_A_JOURNAL}' {disk} {sizes}"
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True, text=True, env=runner_env(), timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for case in json.loads(done.stdout.strip().splitlines()[-1]):
        assert case["errno"] == 28 and case["whole"], case  # ENOSPC, and no half record left behind
        expected = sorted([f"k{i}" for i in range(case["written"])] + ["after", "tfbench_search"])
        assert case["kept"] == expected, case
