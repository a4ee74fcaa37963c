"""Deadband store-on-change, state heartbeat re-recording, and reading-to-tag routing."""

from __future__ import annotations

import datetime as dt

from adapters.base import Quality, Reading
from collector.filters import Deadband
from collector.heartbeat import LAG_S, StateHeartbeat
from collector.routing import TagRouter
from config import parse_config

T0 = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.UTC)


def reading(
    s: float, value: float | None, quality: int = Quality.GOOD, address: str = "a"
) -> Reading:
    return Reading("plc", address, T0 + dt.timedelta(seconds=s), value, quality)


def test_deadband_keeps_moves_beyond_it_quality_changes_and_heartbeats() -> None:
    band = Deadband(0.5, heartbeat_s=60)
    kept = [
        band.keep(r)
        for r in [
            reading(0, 20.0),  # first value
            reading(1, 20.4),  # within the band (of the last KEPT value, 20.0)
            reading(2, 20.5),  # exactly the band: not beyond it
            reading(3, 20.51),  # beyond
            reading(4, 20.2),  # 0.31 from 20.51: within
            reading(5, 20.2, Quality.BAD),  # quality changed
            reading(6, 20.2),  # quality back
            reading(66, 20.2),  # 60 s since the last kept one: heartbeat
            reading(67, None, Quality.BAD),  # value lost
        ]
    ]
    assert kept == [True, False, False, True, False, True, True, True, True]


def test_heartbeat_re_records_in_the_source_time_base_after_the_lag() -> None:
    now = [1000.0]
    hb = StateHeartbeat(30, clock=lambda: now[0])
    # The PLC clock is 10 minutes behind ours: rows keep its time base.
    plc_t = T0 - dt.timedelta(minutes=10)
    hb.seen("plc", (plc_t, "m.state", 1.0, 0, None))
    now[0] += 30 + LAG_S - 0.01
    assert hb.due("plc") == []
    now[0] += 0.02
    assert hb.due("plc") == [(plc_t + dt.timedelta(seconds=30), "m.state", 1.0, 0, None)]
    now[0] += 65  # the tick was late: both missed heartbeats, in order
    assert [r[0] for r in hb.due("plc")] == [
        plc_t + dt.timedelta(seconds=60),
        plc_t + dt.timedelta(seconds=90),
    ]
    # A change stamped before the last re-recorded row came too late: counted, not held.
    hb.seen("plc", (plc_t + dt.timedelta(seconds=80), "m.state", 3.0, 0, None))
    assert hb.late == 1
    hb.forget("plc")  # disconnected: nothing is vouched for any more
    now[0] += 1000
    assert hb.due("plc") == []


CONFIG = """
lines:
  - id: l1
    machines:
      - {id: m, ideal_cycle_s: 1, state_map: {1: running}}
sources:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: m, name: state, signal: state, address: 0}
      - {machine: m, name: temp, address: 1, deadband: 1.0}
"""


def test_router_maps_filters_and_counts_unmapped_readings() -> None:
    cfg = parse_config(CONFIG)
    router = TagRouter(cfg, StateHeartbeat(30), clock=lambda: T0)
    addr = {t.name: t.reading_address for _, t in cfg.tags()}
    rows = router.rows(
        [
            reading(0, 1, address=addr["state"]),
            reading(0, 20.0, address=addr["temp"]),
            reading(1, 20.5, address=addr["temp"]),  # within the deadband
            reading(1, 7, address="holding:99"),  # no such tag
            reading(2, 7, address="holding:99"),
        ]
    )
    assert rows == [
        (T0, "m.state", 1, 0, None),
        (T0, "m.temp", 20.0, 0, None),
    ]
    assert router.unmapped["plc"] == 2
    assert router.filtered["plc"] == 1


TWO_SOURCES = """
lines:
  - id: l1
    machines:
      - {id: m, ideal_cycle_s: 1, state_map: {1: running}}
sources:
  - name: plc1
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: m, name: state, signal: state, address: 0}
      - {machine: m, name: speed, address: 1}
  - name: plc2
    protocol: modbus
    host: 127.0.0.2
    tags:
      - {machine: m, name: temp, address: 0}
"""


def test_router_maps_each_source_s_addresses_to_its_own_tags() -> None:
    """The same address on two sources is two tags; a batch may mix sources; a source that is
    not configured has no tags at all. Only held (state) rows reach the heartbeat."""
    cfg = parse_config(TWO_SOURCES)
    now = [0.0]
    hb = StateHeartbeat(30, clock=lambda: now[0])
    router = TagRouter(cfg, hb, clock=lambda: T0)
    addr = {t.name: t.reading_address for _, t in cfg.tags()}
    assert addr["state"] == addr["temp"]
    t1 = T0 + dt.timedelta(seconds=1)
    rows = router.rows(
        [
            Reading("plc1", addr["state"], T0, 1.0),
            Reading("plc2", addr["temp"], T0, 21.5, Quality.UNCERTAIN),
            Reading("plc9", addr["temp"], T0, 3.0),
            Reading("plc1", addr["speed"], t1, None, Quality.BAD, "sensor fault"),
            Reading("plc2", addr["speed"], t1, 5.0),  # plc2 has no tag at that address
            Reading("plc2", addr["temp"], t1, 21.0),
        ]
    )
    assert rows == [
        (T0, "m.state", 1.0, 0, None),
        (T0, "m.temp", 21.5, 1, None),
        (t1, "m.speed", None, 2, "sensor fault"),
        (t1, "m.temp", 21.0, 0, None),
    ]
    assert all(type(r[3]) is int for r in rows)  # not the Quality enum: the spool stores ints
    assert (router.unmapped["plc9"], router.unmapped["plc2"], router.unmapped["plc1"]) == (1, 1, 0)
    now[0] += 30 + LAG_S
    assert hb.due("plc1") == [(T0 + dt.timedelta(seconds=30), "m.state", 1.0, 0, None)]
    assert hb.due("plc2") == []


def test_router_refuses_implausible_times_and_unstorable_text_with_reasons() -> None:
    """A PLC clock reset to 1970, one running a day ahead, a lone surrogate from a JSON escape:
    refused with the reason and counted, never handed to the heartbeat; the next good reading of
    the same tag passes."""
    cfg = parse_config(TWO_SOURCES)
    now = [0.0]
    hb = StateHeartbeat(30, clock=lambda: now[0])
    router = TagRouter(cfg, hb, clock=lambda: T0)
    addr = {t.name: t.reading_address for _, t in cfg.tags()}
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    routed = router.route(
        [
            Reading("plc1", addr["state"], epoch, 1.0),
            Reading("plc1", addr["speed"], T0 + dt.timedelta(days=1), 5.0),
            Reading("plc1", addr["speed"], T0, None, Quality.GOOD, "bad \ud800 text"),
            Reading("plc1", addr["speed"], T0 - dt.timedelta(days=29), 7.0),  # old, plausible
            Reading("plc1", addr["state"], T0 + dt.timedelta(seconds=600), 2.0),  # at the limit
        ]
    )
    assert routed.rows == [
        (T0 - dt.timedelta(days=29), "m.speed", 7.0, 0, None),
        (T0 + dt.timedelta(seconds=600), "m.state", 2.0, 0, None),
    ]
    assert [(r.time, r.key, r.source, r.address) for r in routed.rejected] == [
        (epoch, "m.state", "plc1", addr["state"]),
        (T0 + dt.timedelta(days=1), "m.speed", "plc1", addr["speed"]),
        (T0, "m.speed", "plc1", addr["speed"]),
    ]
    reasons = [r.reason for r in routed.rejected]
    assert "56.2 years before the collector's clock (max_reading_age_days: 30)" in reasons[0]
    assert "1.0 days ahead of the collector's clock (max_reading_lead_s: 600)" in reasons[1]
    assert reasons[2] == "text_value is not valid Unicode (surrogates not allowed at position 4)"
    assert "1970-01-01" in routed.rejected[0].what
    assert router.rejected["plc1"] == 3
    now[0] += 30 + LAG_S
    # only the accepted state was held: its heartbeat, never the 1970 one
    assert hb.due("plc1") == [(T0 + dt.timedelta(seconds=630), "m.state", 2.0, 0, None)]


SHARED = """
lines:
  - id: l1
    machines:
      - {id: m1, ideal_cycle_s: 1, state_map: {1: running}}
      - {id: m2, ideal_cycle_s: 1, state_map: {1: running}}
sources:
  - name: plc
    protocol: modbus
    host: 127.0.0.1
    tags:
      - {machine: m1, name: state, signal: state, address: 0}
      - {machine: m2, name: upstream_state, address: 0, deadband: 0.5}
      - {machine: m1, name: total, signal: total_count, address: 2, type: uint32}
      - {machine: m2, name: total, signal: total_count, address: 2, type: uint32}
      - {machine: m2, name: upstream_x10, address: 0, scale: 10}
"""


def test_router_gives_a_shared_address_s_readings_to_every_tag() -> None:
    """Two tags on one address each get every reading (issue 14), each with its own handling:
    the state is held by the heartbeat, the measurement deadband-filtered. Decoded another way
    (scale), the same register is another address. A refused reading is refused for each."""
    cfg = parse_config(SHARED)
    now = [0.0]
    hb = StateHeartbeat(30, clock=lambda: now[0])
    router = TagRouter(cfg, hb, clock=lambda: T0)
    addr = {t.key: t.reading_address for _, t in cfg.tags()}
    assert addr["m1.state"] == addr["m2.upstream_state"] != addr["m2.upstream_x10"]
    assert addr["m1.total"] == addr["m2.total"]
    t1, t2 = T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=2)
    routed = router.route(
        [
            Reading("plc", addr["m1.state"], T0, 1.0),
            Reading("plc", addr["m1.total"], T0, 100.0),
            Reading("plc", addr["m1.state"], t1, 1.2),  # within m2's deadband
            Reading("plc", addr["m1.total"], t1, 101.0),
            Reading("plc", addr["m2.upstream_x10"], t1, 12.0),
            Reading("plc", addr["m1.total"], T0 + dt.timedelta(days=1), 102.0),  # refused
            Reading("plc", addr["m1.state"], t2, 2.0),
        ]
    )
    assert routed.rows == [
        (T0, "m1.state", 1.0, 0, None),
        (T0, "m2.upstream_state", 1.0, 0, None),
        (T0, "m1.total", 100.0, 0, None),
        (T0, "m2.total", 100.0, 0, None),
        (t1, "m1.state", 1.2, 0, None),
        (t1, "m1.total", 101.0, 0, None),
        (t1, "m2.total", 101.0, 0, None),
        (t1, "m2.upstream_x10", 12.0, 0, None),
        (t2, "m1.state", 2.0, 0, None),
        (t2, "m2.upstream_state", 2.0, 0, None),
    ]
    assert [r.key for r in routed.rejected] == ["m1.total", "m2.total"]
    assert (router.filtered["plc"], router.unmapped["plc"]) == (1, 0)
    now[0] += 30 + LAG_S
    assert hb.due("plc") == [(t2 + dt.timedelta(seconds=30), "m1.state", 2.0, 0, None)]
