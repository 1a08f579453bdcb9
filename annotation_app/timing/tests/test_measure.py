"""Event streams with known gaps, hidden spans, idle, late and duplicate events, skewed clocks and job
spans give exactly the expected seconds per phase (measure() only; no database)."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from annotation_app.timing.measure import Event, Span, measure

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
THRESHOLD = 30
_ids = itertools.count()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(kind, t, user=1, target=1, case=7, received=None, uid=None, payload=None, client_skew=0.0) -> Event:
    """An event that happened at T0 + t (server clock); the client stamps it with its clock
    (`client_skew` seconds ahead) and the server receives it at T0 + `received` (default: at once)."""
    return Event(
        uid=uid or f"e{next(_ids)}",
        kind=kind,
        user=user,
        client_ts=at(t + client_skew),
        received_at=at(t if received is None else received),
        target=target,
        case=case,
        payload=payload or {},
    )


def job(start, end) -> Span:
    return Span(at(start), at(end))


def phases(timing) -> dict:
    return {k: v for k, v in timing.phases.items() if v}


def test_continuous_work_is_split_into_prompting_waiting_and_correcting():
    events = [
        ev("target_opened", 0),
        ev("prompt_placed", 10),
        ev("propagation_requested", 12),
        ev("propagation_received", 20),
        ev("edit_stroke", 35),
        ev("edit_stroke", 50),
        ev("submit", 60),
    ]
    timing = measure(1, events, [job(12, 20)], THRESHOLD)
    assert phases(timing) == {"prompting": 12.0, "waiting": 8.0, "correcting": 40.0}
    assert timing.time_s == 60.0
    assert timing.counts == {"prompts": 1, "propagations": 1, "strokes": 2, "undos": 0, "redos": 0, "events": 7}
    assert timing.submitted_by == 1


def test_a_gap_longer_than_the_threshold_is_left_out_whole():
    events = [ev("target_opened", 0), ev("edit_stroke", 10), ev("edit_stroke", 100), ev("edit_stroke", 110)]
    timing = measure(1, events, [], THRESHOLD)
    assert phases(timing) == {"correcting": 20.0}
    assert timing.left_out == {"idle": 90.0, "hidden": 0.0}


def test_a_gap_of_exactly_the_threshold_counts():
    timing = measure(1, [ev("target_opened", 0), ev("edit_stroke", 30)], [], THRESHOLD)
    assert timing.time_s == 30.0


def test_time_with_the_page_hidden_is_left_out():
    events = [
        ev("target_opened", 0),
        ev("edit_stroke", 10),
        ev("visibility_hidden", 15),
        ev("visibility_visible", 25),
        ev("edit_stroke", 30),
    ]
    timing = measure(1, events, [], THRESHOLD)
    assert phases(timing) == {"correcting": 20.0}
    assert timing.left_out == {"idle": 0.0, "hidden": 10.0}


def test_a_hidden_page_is_left_out_even_while_a_job_runs():
    events = [ev("propagation_requested", 0), ev("visibility_hidden", 2), ev("visibility_visible", 20)]
    timing = measure(1, [*events, ev("edit_stroke", 25)], [job(0, 18)], THRESHOLD)
    assert timing.phases["waiting"] == 2.0
    assert timing.left_out["hidden"] == 18.0


def test_after_idle_nothing_counts_until_a_person_is_back():
    # the browser stamps `idle` with the last input's time; a machine event does not end it
    events = [
        ev("edit_stroke", 0),
        ev("idle", 5, received=36),
        ev("propagation_received", 20),
        ev("active", 40),
        ev("edit_stroke", 45),
    ]
    timing = measure(1, events, [], THRESHOLD)
    assert phases(timing) == {"correcting": 10.0}
    assert timing.left_out["idle"] == 35.0


def test_a_tab_left_open_overnight_adds_nothing():
    events = [ev("target_opened", 0), ev("edit_stroke", 20), ev("idle", 20, received=50)]
    night = [ev("active", 20 + 12 * 3600), ev("edit_stroke", 25 + 12 * 3600), ev("submit", 30 + 12 * 3600)]
    timing = measure(1, events + night, [], THRESHOLD)
    assert timing.time_s == 30.0
    assert timing.left_out["idle"] == 12 * 3600


def test_waiting_for_the_model_counts_through_a_long_gap_but_no_more():
    events = [
        ev("target_opened", -5),
        ev("propagation_requested", 0),
        ev("propagation_received", 100),
        ev("edit_stroke", 110),
    ]
    timing = measure(1, events, [job(1, 100)], THRESHOLD)
    assert phases(timing) == {"prompting": 5.0, "waiting": 99.0, "correcting": 10.0}
    assert timing.left_out["idle"] == 1.0


def test_overlapping_jobs_are_waited_for_once():
    events = [ev("propagation_requested", 0), ev("propagation_received", 20), ev("edit_stroke", 25)]
    timing = measure(1, events, [job(0, 12), job(5, 20)], THRESHOLD)
    assert timing.phases["waiting"] == 20.0


def test_a_duplicated_event_counts_once():
    stroke = ev("edit_stroke", 10, uid="same-id")
    resent = ev("edit_stroke", 10, uid="same-id", received=12)
    recorded_twice = ev("edit_stroke", 10, uid="other-id")  # same person, kind, time and payload
    events = [ev("target_opened", 0), stroke, resent, recorded_twice, ev("edit_stroke", 20)]
    timing = measure(1, events, [], THRESHOLD)
    assert timing.counts["strokes"] == 2
    assert timing.duplicates == 2
    assert timing.time_s == 20.0


def test_a_late_event_fills_the_gap_it_belonged_to():
    opened, submit = ev("target_opened", 0), ev("submit", 40)
    before = measure(1, [opened, submit], [], THRESHOLD)
    late = ev("edit_stroke", 20, received=3600)  # queued in the browser, sent an hour later
    after = measure(1, [opened, late, submit], [], THRESHOLD)
    assert before.time_s == 0.0 and before.left_out["idle"] == 40.0
    assert phases(after) == {"correcting": 40.0}
    assert after.clock_offsets_s == {1: 0.0}


@pytest.mark.parametrize("skew", [3600.0, -3600.0, 7.5])
def test_a_skewed_client_clock_is_bounded_by_receive_times_and_lines_up_with_jobs(skew):
    events = [
        ev("propagation_requested", 0, client_skew=skew),
        ev("propagation_received", 11, client_skew=skew, received=13),
        ev("edit_stroke", 20, client_skew=skew),
    ]
    timing = measure(1, events, [job(1, 11)], THRESHOLD)
    assert phases(timing) == {"waiting": 10.0, "correcting": 10.0}
    assert timing.clock_offsets_s == {1: -skew}


def test_moving_to_another_target_ends_the_interval_and_time_is_counted_once():
    stream = [
        ev("target_opened", 0, target=1),
        ev("edit_stroke", 10, target=1),
        ev("target_opened", 15, target=2),
        ev("edit_stroke", 25, target=2),
        ev("target_opened", 30, target=1),
        ev("edit_stroke", 40, target=1),
    ]
    first, second = measure(1, stream, [], THRESHOLD), measure(2, stream, [], THRESHOLD)
    assert first.time_s == 25.0
    assert second.time_s == 15.0
    assert first.time_s + second.time_s == 40.0


def test_time_before_a_target_exists_belongs_to_the_target_then_picked_in_that_case():
    stream = [
        ev("active", 0, target=None),
        ev("heartbeat", 10, target=None),
        ev("target_opened", 15, target=1),
        ev("prompt_placed", 20, target=1),
    ]
    assert phases(measure(1, stream, [], THRESHOLD)) == {"prompting": 20.0}
    assert measure(2, stream, [], THRESHOLD).time_s == 0.0
    other_case = [ev("active", 0, target=None, case=8), *stream[2:]]
    assert measure(1, other_case, [], THRESHOLD).time_s == 5.0


def test_time_on_a_submitted_target_is_reviewing_and_not_annotation_time():
    events = [
        ev("target_opened", 0),
        ev("edit_stroke", 10),
        ev("submit", 20),
        ev("target_opened", 100, user=2),
        ev("focus", 110, user=2),
        ev("review_accept", 130, user=2),
    ]
    timing = measure(1, events, [], THRESHOLD)
    assert phases(timing) == {"correcting": 20.0, "reviewing": 30.0}
    assert (timing.time_s, timing.active_s) == (20.0, 50.0)
    assert timing.per_user[1]["correcting"] == 20.0 and timing.per_user[2]["reviewing"] == 30.0
    assert timing.submitted_by == 1


def test_a_rejected_target_goes_back_to_correcting():
    events = [
        ev("edit_stroke", 0),
        ev("submit", 10),
        ev("review_reject", 25, user=2),
        ev("target_opened", 45),
        ev("edit_stroke", 55),
    ]
    timing = measure(1, events, [], THRESHOLD)
    assert phases(timing) == {"correcting": 20.0}  # 0-10 and 45-55; the reviewer's lone event spans nothing


def test_time_after_the_target_was_closed_is_not_counted():
    events = [ev("edit_stroke", 0), ev("target_closed", 5), ev("target_opened", 10), ev("edit_stroke", 20)]
    assert measure(1, events, [], THRESHOLD).time_s == 15.0


def test_a_manual_target_is_all_correcting():
    events = [ev("target_opened", 0), ev("edit_stroke", 10), ev("edit_stroke", 20), ev("submit", 30)]
    assert phases(measure(1, events, [], THRESHOLD)) == {"correcting": 30.0}


def test_trailing_time_after_the_model_answered_is_correcting():
    events = [ev("propagation_requested", 0), ev("propagation_received", 10), ev("focus", 15)]
    assert phases(measure(1, events, [job(0, 10)], THRESHOLD)) == {"waiting": 10.0, "correcting": 5.0}
