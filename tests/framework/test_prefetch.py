"""framework.http.prefetch keeps calls going while its consumer pauses (e.g. to store a batch)."""

from __future__ import annotations

import threading
import time

from framework.http import prefetch


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
