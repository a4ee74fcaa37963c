"""The host's per-edge-node state machine, message by message (Sparkplug 3.0 §5), its tag map,
and topics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from adapters.base import Quality, Reading
from adapters.errors import DecodeError
from adapters.sparkplug.payload import decode
from adapters.sparkplug.schema import payload_class
from adapters.sparkplug.session import Sessions
from adapters.sparkplug.tagmap import TagMap, address
from adapters.sparkplug.topics import Topic, parse, subscription_filters
from config.sources.sparkplug import SparkplugSource
from simulators.frontends import sparkplug_wire as wire
from simulators.frontends.sparkplug_wire import WireMetric, encode_payload

T0 = dt.datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC)
MS0 = int(T0.timestamp() * 1000)


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def ms(s: float) -> int:
    return MS0 + round(s * 1000)


def nbirth(seq: int = 0, bd: int = 0) -> tuple[str, bytes]:
    metrics = [
        WireMetric("bdSeq", None, ms(0), wire.INT64, bd),
        WireMetric("Node Control/Rebirth", None, ms(0), wire.BOOLEAN, False),
        WireMetric("uptime", 1, ms(0), wire.UINT32, 5),
    ]
    return "spBv1.0/G/NBIRTH/E", encode_payload(ms(0), seq, metrics)


def dbirth(seq: int, s: float = 0) -> tuple[str, bytes]:
    metrics = [
        WireMetric("state", 10, ms(s), wire.INT16, 1),
        WireMetric("temp", 11, ms(s), wire.FLOAT, 20.5),
    ]
    return "spBv1.0/G/DBIRTH/E/press", encode_payload(ms(s), seq, metrics)


def ddata(seq: int, s: float, state: int = 2, alias: int = 10) -> tuple[str, bytes]:
    m = WireMetric(None, alias, ms(s), None, state, value_type=wire.INT16)
    return "spBv1.0/G/DDATA/E/press", encode_payload(ms(s), seq, [m])


def ndeath(bd: int) -> tuple[str, bytes]:
    return "spBv1.0/G/NDEATH/E", encode_payload(
        ms(0), None, [WireMetric("bdSeq", None, None, wire.INT64, bd)]
    )


def ddeath(seq: int, s: float) -> tuple[str, bytes]:
    return "spBv1.0/G/DDEATH/E/press", encode_payload(ms(s), seq, [])


def run(
    sessions: Sessions, messages: list[tuple[str, bytes]], s: float = 9
) -> list[tuple[list[Reading], str | None]]:
    return [tuple(sessions.apply(parse(t), decode(p), at(s))) for t, p in messages]  # type: ignore[misc]


TagRow = tuple[str, str, str | None, str]  # a tag's group, edge node, device, metric
# every metric of the births above but `uptime`
TAGGED: list[TagRow] = [
    ("G", "E", None, "bdSeq"),
    ("G", "E", None, "Node Control/Rebirth"),
    ("G", "E", "press", "state"),
    ("G", "E", "press", "temp"),
]


def tags(rows: Sequence[TagRow]) -> TagMap:
    return TagMap(
        SparkplugSource.model_validate(
            {
                "protocol": "sparkplug",
                "name": "spb",
                "host": "127.0.0.1",
                "host_id": "h",
                "tags": [
                    dict(machine="m", name=f"t{i}", group=g, edge_node=e, device=d, metric=m)
                    for i, (g, e, d, m) in enumerate(rows)
                ],
            }
        )
    )


def fresh(
    tagged: Sequence[TagRow] = TAGGED,
    *,
    reorder_timeout_s: float = 0.0,
    store_transient: bool = False,
) -> Sessions:
    return Sessions(
        tags(tagged),
        rebirth_wait_s=5,
        reorder_timeout_s=reorder_timeout_s,
        store_transient=store_transient,
    )


def v(
    metric: str, s: float, value: float | None, device: str | None = "press", q: int = Quality.GOOD
) -> Reading:
    return Reading("spb", address("G", "E", device, metric), at(s), value, q, None)


def metric_of(r: Reading) -> tuple[str | None, str]:
    """(device, metric) of a reading of the exact address"""
    node, metric = r.address.split("#")
    parts = node.split("/")
    return (parts[2] if len(parts) == 3 else None), metric


def test_births_then_aliases_only_data() -> None:
    sessions = fresh()
    (node, _), (dev, _), (data, why) = run(sessions, [nbirth(), dbirth(1), ddata(2, 3)])
    assert [metric_of(x) for x in node] == [(None, "bdSeq"), (None, "Node Control/Rebirth")]
    assert dev == [v("state", 0, 1.0), v("temp", 0, 20.5)]
    assert (data, why) == ([v("state", 3, 2.0)], None)
    assert sessions.counts["births"] == 2
    assert sessions.counts["unmatched"] == 1  # uptime: no tag names it


def test_negative_int16_by_alias_uses_the_birth_type() -> None:
    sessions = fresh()
    *_, (data, _) = run(sessions, [nbirth(), dbirth(1), ddata(2, 3, state=-4)])
    assert data == [v("state", 3, -4.0)]


def test_seq_wraps_from_255_to_0() -> None:
    sessions = fresh()
    out = run(sessions, [nbirth(seq=254), dbirth(255), ddata(0, 1)])
    assert [why for _, why in out] == [None, None, None]
    assert sessions.counts["seq_gaps"] == 0


def test_seq_gap_stores_the_data_and_asks_a_rebirth_once_per_wait() -> None:
    sessions = fresh()
    out = run(sessions, [nbirth(), dbirth(1), ddata(3, 1), ddata(5, 2)])
    assert out[2] == ([v("state", 1, 2.0)], "seq 3 where 2 was expected")
    assert out[3] == ([v("state", 2, 2.0)], None)  # asked already, within rebirth_wait_s
    assert sessions.counts["seq_gaps"] == 2
    later = sessions.apply(parse(ddata(7, 3)[0]), decode(ddata(7, 3)[1]), at(9 + 5))
    assert later.rebirth == "seq 7 where 6 was expected"


# Reorder Timeout (reorder_timeout_s = 2): each case is the seqs of DDATA after the births
# (seq 0, 1) with their arrival second, then when `due` is asked, and what it gives.
REORDER_CASES = [
    # in order: nothing awaited
    ([(2, 1), (3, 2)], 9, [], 0, 0),
    # 3 late but within the timeout: reordered, no request
    ([(2, 1), (4, 1.5), (3, 2)], 9, [], 1, 1),
    # 3 never comes: a request once the timeout (from the gap at 1.5 s) has run out
    ([(2, 1), (4, 1.5)], 3.5, ["seq 3 missing"], 1, 0),
    # two missing, one comes: the other is still asked for
    ([(2, 1), (5, 1.5), (3, 2)], 4, ["seq 4 missing"], 1, 1),
    # the wait is from the first gap, the second adds its seqs
    ([(2, 1), (4, 1.5), (6, 3)], 3.5, ["seq 3, 5 missing"], 2, 0),
    # 3 missing, its number comes round again in order (256 messages later): lost, due at once
    (
        [(2, 1), (4, 1.5)] + [(n % 256, 1.6) for n in range(5, 260)],
        1.6,
        ["seq 3 missing"],
        1,
        0,
    ),
    # wrapping: 255 then 1, seq 0 awaited
    ([(2, 1)] + [(n, 1) for n in range(3, 256)] + [(1, 2)], 4, ["seq 0 missing"], 1, 0),
]


@pytest.mark.parametrize(("arrivals", "asked_at", "asks", "gaps", "reordered"), REORDER_CASES)
def test_reorder_timeout(
    arrivals: list[tuple[int, float]], asked_at: float, asks: list[str], gaps: int, reordered: int
) -> None:
    sessions = fresh(reorder_timeout_s=2)
    run(sessions, [nbirth(), dbirth(1)], s=0)
    for seq, s in arrivals:
        values, why = sessions.apply(parse(ddata(seq, s)[0]), decode(ddata(seq, s)[1]), at(s))
        assert (values, why) == ([v("state", s, 2.0)], None)  # stored at once, never asked yet
    assert sessions.due(at(asked_at)) == [("G", "E", a) for a in asks]
    assert sessions.counts["seq_gaps"] == gaps
    assert sessions.counts["reordered"] == reordered
    assert sessions.due(at(asked_at + 10)) == []  # a wait ends once
    assert sessions.next_due() is None


def test_reorder_wait_ends_with_a_birth_and_respects_rebirth_wait() -> None:
    sessions = fresh(reorder_timeout_s=2)
    run(sessions, [nbirth(), dbirth(1), ddata(3, 1)], s=1)
    assert sessions.next_due() == at(3)
    run(sessions, [nbirth(), dbirth(1)], s=2)  # born again: nothing is missing any more
    assert (sessions.next_due(), sessions.due(at(9))) == (None, [])
    run(sessions, [ddata(2, 3), ddata(4, 3)], s=3)
    assert sessions.due(at(4.999)) == []  # the wait runs to 5
    assert sessions.due(at(5)) == [("G", "E", "seq 3 missing")]
    run(sessions, [ddata(6, 6)], s=6)
    assert sessions.next_due() == at(8)
    assert sessions.due(at(8)) == []  # asked at 5, within rebirth_wait_s: the wait just ends
    assert sessions.next_due() is None
    assert sessions.counts["seq_gaps"] == 3


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([ddata(2, 1)], "DDATA before NBIRTH"),
        ([dbirth(1)], "DBIRTH before NBIRTH"),
        ([nbirth(), ddata(1, 1)], "DDATA of 'press' before its DBIRTH"),
        ([nbirth(), dbirth(1), ddata(2, 1, alias=99)], "1 metric(s) not in any birth"),
    ],
)
def test_what_asks_for_a_rebirth(messages: list[tuple[str, bytes]], reason: str) -> None:
    sessions = fresh()
    *_, (values, why) = run(sessions, messages)
    assert (values, why) == ([], reason)


def test_ndeath_marks_node_and_device_metrics_bad_at_arrival() -> None:
    sessions = fresh()
    run(sessions, [nbirth(bd=4), dbirth(1), ddata(2, 1)])
    ((dead, why),) = run(sessions, [ndeath(4)], s=20)
    bad = {metric_of(x): (x.ts, x.value, x.quality) for x in dead}
    assert bad == {
        (None, "Node Control/Rebirth"): (at(20), None, Quality.BAD),
        ("press", "state"): (at(20), None, Quality.BAD),
        ("press", "temp"): (at(20), None, Quality.BAD),
    }
    assert why is None
    assert sessions.counts["unmatched"] == 2  # uptime at its birth and at the death
    assert run(sessions, [ddata(3, 21)])[0] == ([], "DDATA before NBIRTH")


def test_ndeath_of_an_older_session_is_ignored() -> None:
    sessions = fresh()
    run(sessions, [nbirth(bd=5), dbirth(1)])
    assert run(sessions, [ndeath(4)]) == [([], None)]
    assert sessions.counts["stale_ndeath_ignored"] == 1
    assert run(sessions, [ddata(2, 1)])[0] == ([v("state", 1, 2.0)], None)


def test_ddeath_marks_only_that_device_at_its_timestamp() -> None:
    sessions = fresh()
    run(sessions, [nbirth(), dbirth(1)])
    ((dead, why),) = run(sessions, [ddeath(2, 4)])
    assert why is None
    assert dead == [v("state", 4, None, q=Quality.BAD), v("temp", 4, None, q=Quality.BAD)]
    assert run(sessions, [ddata(3, 5)])[0] == ([], "DDATA of 'press' before its DBIRTH")


def test_rebirth_replaces_aliases() -> None:
    sessions = fresh()
    run(sessions, [nbirth(), dbirth(1)])
    topic, _ = dbirth(0)
    rebirth = encode_payload(ms(5), 1, [WireMetric("temp", 10, ms(5), wire.FLOAT, 1.0)])
    run(sessions, [nbirth(), (topic, rebirth)])
    m = WireMetric(None, 10, ms(6), None, 3.5, value_type=wire.FLOAT)
    ((data, _),) = run(sessions, [("spBv1.0/G/DDATA/E/press", encode_payload(ms(6), 2, [m]))])
    assert data == [v("temp", 6, 3.5)]  # alias 10 is temp now


def test_losing_our_connection_marks_everything_bad_and_needs_births() -> None:
    sessions = fresh()
    run(sessions, [nbirth(), dbirth(1)])
    lost = sessions.lost(at(30))
    assert {metric_of(x) for x in lost} == {
        (None, "Node Control/Rebirth"),
        ("press", "state"),
        ("press", "temp"),
    }
    assert all(x.quality == Quality.BAD and x.value is None for x in lost)
    assert run(sessions, [ddata(2, 31)])[0] == ([], "DDATA before NBIRTH")


def test_transient_metrics_are_skipped_unless_configured() -> None:
    base = [nbirth(), dbirth(1)]
    p = payload_class()(timestamp=ms(1), seq=2)
    p.metrics.add(alias=10, timestamp=ms(1), is_transient=True, int_value=2)
    for store, expected, skipped in ((False, [], 1), (True, [v("state", 1, 2.0)], 0)):
        sessions = fresh(store_transient=store)
        run(sessions, base)
        data = decode(p.SerializeToString())
        assert sessions.apply(parse(ddata(2, 1)[0]), data, at(9)).readings == expected
        assert sessions.counts["skipped_transient"] == skipped


def test_a_metric_gives_a_reading_per_tag_address_wildcards_too() -> None:
    sessions = fresh([*TAGGED, ("+", "E", "press", "state"), ("+", "+", "press", "state")])
    *_, (data, _) = run(sessions, [nbirth(), dbirth(1), ddata(2, 3)])
    assert [r.address for r in data] == ["+/+/press#state", "+/E/press#state", "G/E/press#state"]
    assert {r[2:] for r in data} == {(at(3), 2.0, Quality.GOOD, None)}


# one DDATA metric each, after a DBIRTH of a (alias 0, Double), b (alias 1, Int16) and
# c (alias 2, Double): (its fields, the readings of a, b, c, what is counted)
DATA_CASES = [
    ({"alias": 0, "double_value": 0.0}, [("a", 0.0, Quality.GOOD)], {}),
    ({"alias": 1, "int_value": 0xFFFC}, [("b", -4.0, Quality.GOOD)], {}),
    ({"alias": 1, "int_value": 0xFFFC, "datatype": 6}, [("b", 65532.0, Quality.GOOD)], {}),
    ({"alias": 2, "float_value": 1.5}, [("c", 1.5, Quality.GOOD)], {}),
    ({"name": "c", "double_value": 2.5}, [("c", 2.5, Quality.GOOD)], {}),
    ({"alias": 2, "is_null": True}, [("c", None, Quality.BAD)], {}),
    ({"alias": 2, "double_value": 3.0, "quality": 0}, [("c", 3.0, Quality.BAD)], {}),
    ({"alias": 2, "bytes_value": b"x"}, [], {"skipped_type": 1}),
    ({"double_value": 4.0}, [], {"unknown_metric": 1}),  # neither name nor alias
    ({"alias": 3, "double_value": 4.0}, [], {"unknown_metric": 1}),
    ({"name": "d", "double_value": 4.0}, [], {"unknown_metric": 1}),
]


@pytest.mark.parametrize(("fields", "expected", "counted"), DATA_CASES)
def test_data_metric_values_by_field_and_datatype(
    fields: dict[str, object],
    expected: list[tuple[str, float | None, int]],
    counted: dict[str, int],
) -> None:
    abc = [("G", "E", "press", x) for x in "abc"]
    sessions = fresh(abc)
    birth = payload_class()(timestamp=ms(0), seq=1)
    for alias, (name, datatype) in enumerate((("a", 10), ("b", 2), ("c", 10))):
        birth.metrics.add(name=name, alias=alias, datatype=datatype, double_value=1.0)
    data = payload_class()(timestamp=ms(3), seq=2)
    fields = dict(fields)
    code = fields.pop("quality", None)
    m = data.metrics.add(timestamp=ms(3), **fields)
    if code is not None:
        m.properties.keys.append("Quality")
        m.properties.values.add(type=3, int_value=code)
    run(sessions, [nbirth(), ("spBv1.0/G/DBIRTH/E/press", birth.SerializeToString())])
    before = dict(sessions.counts)
    ((readings, why),) = run(sessions, [("spBv1.0/G/DDATA/E/press", data.SerializeToString())])
    assert readings == [
        Reading("spb", f"G/E/press#{x}", at(3), value, q, None) for x, value, q in expected
    ]
    assert {k: n - before[k] for k, n in sessions.counts.items() if n != before[k]} == counted
    assert why == ("1 metric(s) not in any birth" if "unknown_metric" in counted else None)


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("spBv1.0/G/NBIRTH/E", Topic("NBIRTH", "G", "E", None)),
        ("spBv1.0/G/DDATA/E/D", Topic("DDATA", "G", "E", "D")),
        ("spBv1.0/G/NCMD/E", Topic("NCMD", "G", "E", None)),
    ],
)
def test_topics(name: str, topic: Topic) -> None:
    assert parse(name) == topic


@pytest.mark.parametrize(
    "name",
    ["spBv1.0/STATE/host", "spBv1.0/G/DDATA/E", "spBv1.0/G/NDATA/E/D", "spAv1.0/G/NDATA/E", "x"],
)
def test_not_edge_topics(name: str) -> None:
    with pytest.raises(DecodeError):
        parse(name)


def test_subscription_filters() -> None:
    assert subscription_filters(["A", "B"]) == ["spBv1.0/A/#", "spBv1.0/B/#"]
    assert subscription_filters(["A", "+"]) == ["spBv1.0/#"]
