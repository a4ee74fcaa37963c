"""Sparkplug B load for bench.e2e, each role its own process (as bench.e2e_load's roles).

    .venv/bin/python -m bench.e2e_sparkplug ROLE [options]

Roles: `sparkplug-pub` (one edge node `Bench/edge` with one device per machine: NBIRTH and the
DBIRTHs, then DDATA of `--values` Double metrics by alias, each with its timestamp, at QoS 0;
a Rebirth request is answered with the births again), `sparkplug-bare` (a plain paho subscriber
that decodes every payload with protobuf and touches every metric's value: the ceiling). Both
print `{"t": wall time, "n": count}` once a second, as bench.e2e expects; the adapter alone is
bench.e2e_load's `adapter` role on a sparkplug source.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from bench.e2e_load import Ticker, emit, machine_name, stop_event_on_sigterm

GROUP, EDGE = "Bench", "edge"
DOUBLE, INT64, BOOLEAN = 10, 4, 11


def sparkplug_pub(args: argparse.Namespace) -> None:
    """Publish DDATA round-robin over the devices, each message `--values` metrics by alias.

    Metric timestamps are strictly increasing per device (ms), so no two readings of a tag
    collide in the database. The payload is a protobuf message kept and re-serialised, so the
    publisher's own cost stays small."""
    import random

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from adapters.sparkplug.schema import payload_class

    payload = payload_class()
    rng = random.Random(args.seed)
    devices = [machine_name(i) for i in range(args.topics)]
    rebirth = threading.Event()

    def births() -> list[tuple[str, bytes]]:
        now = int(time.time() * 1000)
        node = payload(timestamp=now, seq=0)
        for name, kind, value in (("bdSeq", INT64, 0), ("Node Control/Rebirth", BOOLEAN, False)):
            m = node.metrics.add(name=name, timestamp=now, datatype=kind)
            if kind == INT64:
                m.long_value = value
            else:
                m.boolean_value = value
        out = [(f"spBv1.0/{GROUP}/NBIRTH/{EDGE}", node.SerializeToString())]
        for d, device in enumerate(devices):
            p = payload(timestamp=now, seq=(d + 1) % 256)
            for k in range(args.values):
                p.metrics.add(
                    name=f"v{k + 1}",
                    alias=d * args.values + k + 1,
                    timestamp=now,
                    datatype=DOUBLE,
                    double_value=rng.uniform(0, 1000),
                )
            out.append((f"spBv1.0/{GROUP}/DBIRTH/{EDGE}/{device}", p.SerializeToString()))
        return out

    data = []
    for d in range(len(devices)):
        p = payload()
        for k in range(args.values):
            p.metrics.add(alias=d * args.values + k + 1, double_value=rng.uniform(0, 1000))
        data.append(p)
    topics = [f"spBv1.0/{GROUP}/DDATA/{EDGE}/{device}" for device in devices]

    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-edge")
    client.max_queued_messages_set(10_000)
    client.on_message = lambda *_: rebirth.set()
    client.connect(args.host, args.port, keepalive=60)
    client.subscribe(f"spBv1.0/{GROUP}/NCMD/{EDGE}", qos=1)
    client.loop_start()
    stop = stop_event_on_sigterm()
    sent = 0
    ticker = Ticker(lambda: sent * args.values).start()
    last_ts = [0] * len(devices)
    seq = 0
    rebirth.set()  # the first births
    end = time.monotonic() + args.duration
    slice_s, budget, next_slice = 0.01, 0.0, time.monotonic()
    i = 0
    while not stop.is_set() and time.monotonic() < end:
        if rebirth.is_set():
            rebirth.clear()
            for topic, body in births():
                client.publish(topic, body, qos=0)
            seq = len(devices) + 1
        todo = 100
        if args.rate:  # paced in 10 ms slices: QoS 0 has no broker pacing
            now = time.monotonic()
            if now < next_slice:
                time.sleep(next_slice - now)
            next_slice += slice_s
            budget += args.rate * slice_s
            todo = int(budget)
            budget -= todo
        for _ in range(todo):
            d = i % len(devices)
            ts = max(int(time.time() * 1000), last_ts[d] + 1)
            last_ts[d] = ts
            p = data[d]
            p.timestamp, p.seq = ts, seq % 256
            for m in p.metrics:
                m.timestamp = ts
            while client.publish(topics[d], p.SerializeToString(), qos=0).rc == (
                mqtt.MQTT_ERR_QUEUE_SIZE
            ):
                time.sleep(0.001)  # paho's queue is full: the socket sets the pace
            seq += 1
            i += 1
            sent += 1
    ticker.stop()
    client.loop_stop()
    client.disconnect()


def sparkplug_bare(args: argparse.Namespace) -> None:
    """A plain paho subscriber: decode every payload with protobuf, touch every value."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from adapters.sparkplug.schema import payload_class

    decode = payload_class().FromString
    values = 0

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal values
        for m in decode(msg.payload).metrics:
            kind = m.WhichOneof("value")
            if kind is not None and getattr(m, kind) == getattr(m, kind):
                values += 1

    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=True
    )
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(f"spBv1.0/{GROUP}/#", qos=1)
    client.connect(args.host, args.port, keepalive=60)
    stop = stop_event_on_sigterm()
    ticker = Ticker(lambda: values).start()
    client.loop_start()
    stop.wait(args.duration)
    client.loop_stop()
    ticker.stop()
    emit(values=values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", type=int, required=True)
    common.add_argument("--host", default="127.0.0.1")
    common.add_argument("--duration", type=float, default=60)
    p = roles.add_parser("sparkplug-pub", parents=[common])
    p.add_argument("--topics", type=int, default=50, help="devices (machines)")
    p.add_argument("--values", type=int, default=20, help="metrics per DDATA")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=0, help="messages/s; 0: as fast as possible")
    p.set_defaults(func=sparkplug_pub)
    p = roles.add_parser("sparkplug-bare", parents=[common])
    p.set_defaults(func=sparkplug_bare)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
