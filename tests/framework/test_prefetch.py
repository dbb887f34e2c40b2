"""framework.http.prefetch and Prefetch: calls go on while the consumer pauses, lanes share one queue."""

from __future__ import annotations

import threading
import time

import pytest

from framework.http import Prefetch, prefetch


def test_calls_go_on_while_the_consumer_pauses():
    started: list[int] = []
    lock = threading.Lock()

    def call(item: int) -> int:
        with lock:
            started.append(item)
        time.sleep(0.02)
        return item * 10

    answers = prefetch(call, range(12), workers=2, ahead=8)
    first = next(answers)
    time.sleep(0.5)  # the consumer stores a batch: eight calls are queued, so they go on meanwhile
    with lock:
        during_pause = len(started)
    rest = list(answers)
    assert first == (0, 0) and rest == [(n, n * 10) for n in range(1, 12)]
    assert during_pause >= 8  # without look-ahead: only `workers` + 1


def test_closing_cancels_the_calls_not_yet_started():
    started: list[int] = []
    gate = threading.Event()

    def call(item: int) -> int:
        started.append(item)
        gate.wait(5)
        return item

    answers = prefetch(call, range(100), workers=2, ahead=16)
    gate.set()
    next(answers)
    answers.close()
    time.sleep(0.1)
    assert len(started) < 100 and len(started) <= 2 + 16


def recorder():
    started: list[str] = []
    lock = threading.Lock()

    def call(item: str) -> str:
        with lock:
            started.append(item)
        return item.upper()

    return started, call


def test_lanes_take_turns_in_one_queue_and_answers_keep_each_lanes_order():
    started, call = recorder()
    with Prefetch(call, workers=1, ahead=4) as calls:
        calls.plan("daily", ["d1", "d2"])
        calls.plan("power", ["p1", "p2"])
        calls.plan("curve", ["c1", "c2", "c3", "c4"])
        answers = [(lane, item, result) for lane, item, result in calls]
    # One of each lane, then again: the curve's first call goes before the daily's last.
    assert started == ["d1", "p1", "c1", "d2", "p2", "c2", "c3", "c4"]
    assert [item for _, item, _ in answers] == started
    assert all(result == item.upper() for _, item, result in answers)
    assert [item for lane, item, _ in answers if lane == "curve"] == ["c1", "c2", "c3", "c4"]


def test_planning_a_lane_again_drops_its_queued_calls_and_keeps_the_others():
    started: list[str] = []

    def call(item: str) -> str:
        started.append(item)
        time.sleep(0.05)
        return item

    with Prefetch(call, workers=1, ahead=8) as calls:
        calls.plan("a", ["a1", "a2", "a3"])
        calls.plan("b", ["b1", "b2"])
        consumed = []
        for _lane, item, _ in calls:
            consumed.append(item)
            if item == "a1":  # e.g. "window too long": the lane starts again, in halves
                calls.plan("a", ["a2-half", "a2-other-half"])
    assert consumed[0] == "a1"
    assert [i for i in consumed if i.startswith("b")] == ["b1", "b2"]
    assert [i for i in consumed if i.startswith("a")] == ["a1", "a2-half", "a2-other-half"]
    assert "a3" not in started  # cancelled before it started (a2 may have been under way: its answer dropped)


def test_an_error_comes_out_at_its_items_turn_and_the_queue_is_cancelled():
    def call(item: int) -> int:
        if item == 3:
            raise ValueError("bad window")
        return item

    seen = []
    with Prefetch(call, workers=2, ahead=4) as calls:
        calls.plan("only", range(50))
        try:
            for _, item, _ in calls:
                seen.append(item)
        except ValueError:
            pass
    assert seen == [0, 1, 2]


def test_a_lane_error_ends_its_lane_only_and_is_raised_once_the_others_are_done():
    class Down(Exception):
        pass

    def call(item: str) -> str:
        if item == "b1":
            raise Down("b's API is down")
        return item

    consumed = []
    with Prefetch(call, workers=2, ahead=4, lane_errors=(Down,)) as calls:
        calls.plan("a", [f"a{n}" for n in range(10)])
        calls.plan("b", [f"b{n}" for n in range(10)])
        with pytest.raises(Down, match="b's API"):
            for _, item, _ in calls:
                consumed.append(item)
    assert consumed[:1] == ["a0"] and [i for i in consumed if i.startswith("a")] == [f"a{n}" for n in range(10)]
    assert [i for i in consumed if i.startswith("b")] == ["b0"]  # b1 failed: b2... dropped
