"""Run statuses: the words on disk and what each grouping holds."""

import json

from tfbench.engine import events as ev
from tfbench.engine.status import RunStatus, exit_code


def test_statuses_are_written_as_the_words_the_event_log_has_always_used():
    assert json.loads(json.dumps({"status": RunStatus.EARLY_STOPPED})) == {"status": "early_stopped"}
    assert f"{RunStatus.COMPLETED}" == str(RunStatus.COMPLETED) == "completed"
    assert {s.value for s in RunStatus} == {
        "waiting", "running", "paused", "interrupted", "damaged", "completed", "early_stopped", "stopped", "failed"
    }  # fmt: skip


def test_groupings_say_which_runs_ended_succeeded_and_kept_a_model():
    assert [s for s in RunStatus if s.ended] == ["completed", "early_stopped", "stopped", "failed"]
    assert [s for s in RunStatus if s.succeeded] == ["completed", "early_stopped"]
    assert [s for s in RunStatus if s.kept_model] == ["completed", "early_stopped", "stopped"]
    assert "early_stopped" in ev.ENDED and "interrupted" not in ev.ENDED  # plain strings read from JSON test alike


def test_the_runner_exits_0_for_success_130_for_a_stop_and_1_otherwise():
    assert {s.value: s.exit_code for s in RunStatus if s.ended} == {
        "completed": 0, "early_stopped": 0, "stopped": 130, "failed": 1
    }  # fmt: skip
    assert exit_code("interrupted") == exit_code("something new") == 1


def test_a_run_state_ends_with_the_status_its_run_ended_event_names():
    state = ev.RunState()
    state.apply(ev.make_event(ev.RUN_STARTED, run_id="r", epochs=2))
    assert state.running and not state.ended
    state.apply(ev.make_event(ev.RUN_ENDED, status="early_stopped", reason="patience"))
    assert state.ended and RunStatus(state.status).succeeded
