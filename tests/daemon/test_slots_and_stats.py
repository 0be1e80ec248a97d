"""The pipeline's building blocks: newest-wins slots and the running figures."""

from __future__ import annotations

import threading
import time

import pytest

from stylecast.daemon.slots import LatestSlots
from stylecast.stream.meters import LatencyWindow, RateMeter


def test_a_slot_keeps_only_the_newest_item_and_counts_drops():
    slots = LatestSlots()
    assert slots.put("frame", 1) is False
    assert slots.put("frame", 2) is True
    assert slots.put("frame", 3) is True
    assert slots.put("raw", "r") is False
    assert slots.drops("frame") == 2 and slots.drops("raw") == 0
    assert slots.take("frame", 0) == 3
    assert slots.take("frame", 0) is None
    assert slots.take_all(0) == {"raw": "r"}
    assert slots.take_all(0.01) == {}


def test_take_wakes_on_put_and_close_releases_waiters():
    slots = LatestSlots()
    got = []
    waiter = threading.Thread(target=lambda: got.append(slots.take("frame", 10)))
    waiter.start()
    time.sleep(0.05)
    slots.put("frame", "x")
    waiter.join(5)
    assert got == ["x"]
    waiter = threading.Thread(target=lambda: got.append(slots.take("frame", 10)))
    waiter.start()
    slots.close()
    waiter.join(5)
    assert not waiter.is_alive() and got[-1] is None


def test_wait_wanted_returns_once_a_consumer_waits_for_an_empty_slot():
    slots = LatestSlots()
    assert slots.wait_wanted("frame", 0.05) is False  # nobody asks
    consumer = threading.Thread(target=slots.take, args=("frame", 10))
    consumer.start()
    assert slots.wait_wanted("frame", 5) is True
    slots.put("frame", 1)
    consumer.join(5)
    slots.close()
    assert slots.wait_wanted("frame", 5) is False


def test_rate_meter_counts_events_per_second_in_its_window():
    meter = RateMeter(window_s=2.0)
    for i in range(31):
        meter.tick(now=100 + i / 30)
    assert meter.rate(now=101.0) == pytest.approx(30, rel=0.01)
    assert meter.total == 31
    assert meter.rate(now=110.0) == 0.0  # everything aged out
    assert meter.total == 31


def test_latency_window_percentiles_over_the_last_samples():
    window = LatencyWindow(samples=100)
    assert window.percentiles() == {"p50": None, "p95": None, "p99": None}
    for value in range(1000):  # only the last 100 (900..999) count
        window.add(float(value))
    figures = window.percentiles()
    assert figures["p50"] == pytest.approx(949.5)
    assert 990 < figures["p95"] < figures["p99"] <= 999
