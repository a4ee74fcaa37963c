"""Issue 14.6: `shopfloor listen` lists the topics and JSON fields a broker carries, over a real
Mosquitto, and its yaml output is a tags: block that `shopfloor check` accepts."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import signal
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from adapters.errors import TransportError
from adapters.mqtt import listen_cli
from adapters.mqtt.listen import MAX_LIST_ITEMS, TopicLog, listen, listener_source
from tests.adapters.commands import shopfloor
from tests.services import Mosquitto, Publisher, eventually, free_port

Row = tuple[str, str, str, str, str]


@pytest.mark.parametrize(
    ("payloads", "rows"),
    [
        (
            [b'{"a": 1, "b": {"c": "x", "d": [true, null]}}', b'{"a": 2.5}'],
            [
                ("t", "a", "2/2", "number", "2.5"),
                ("t", "b.c", "1/2", "string", '"x"'),
                ("t", "b.d.0", "1/2", "boolean", "true"),
                ("t", "b.d.1", "1/2", "null", "null"),
            ],
        ),
        (  # a field's type may change; the last value is shown
            [b'{"v": 1}', b'{"v": "1.5"}', b'{"v": 2}'],
            [("t", "v", "3/3", "number/string", "2")],
        ),
        (  # a dot path cannot name a key with a dot; empty objects and lists hold no value
            [b'{"a.b": 1, "e": {}, "l": [], "ok": 0}'],
            [("t", "ok", "1/1", "number", "0")],
        ),
        (  # a top-level list is addressed by index, as `field` does; long lists are cut
            [json.dumps(list(range(MAX_LIST_ITEMS + 3))).encode()],
            [("t", str(i), "1/1", "number", str(i)) for i in range(MAX_LIST_ITEMS)],
        ),
        (  # plain payloads: a tag without `field` reads them
            [b"21.5", b" true ", b'"RUNNING"', b"RUNNING"],
            [("t", "(payload)", "4/4", "number/boolean/string/text", "RUNNING")],
        ),
        (
            [b"\xff\xfe", b"", b"  ", b'{"x": 1}', b"{broken"],
            [
                ("t", "x", "1/5", "number", "1"),
                ("t", "(payload)", "1/5", "text", "{broken"),
                ("t", "(binary)", "1/5", "", ""),
                ("t", "(empty)", "2/5", "", ""),
            ],
        ),
        (  # values shown on one line, cut to 40 characters
            [json.dumps({"s": "line\nbreak " + "x" * 50}).encode()],
            [("t", "s", "1/1", "string", '"line\\nbreak ' + "x" * 26 + "…")],
        ),
    ],
)
def test_topic_log_rows(payloads: list[bytes], rows: list[Row]) -> None:
    log = TopicLog()
    for payload in payloads:
        log.add("t", payload)
    assert listen_cli.rows(log) == rows
    assert log.messages == len(payloads)


@pytest.mark.parametrize(
    ("topic_filter", "root"),
    [
        ("#", []),
        ("plant/#", ["plant"]),
        ("plant/+/status", ["plant"]),
        ("plant/line1/packer/status", ["plant", "line1", "packer"]),
        ("status", []),
    ],
)
def test_topic_root_is_the_filters_fixed_levels(topic_filter: str, root: list[str]) -> None:
    assert listen_cli.topic_root(topic_filter) == root


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shopfloor listen")
    listen_cli.configure_parser(parser)
    return parser.parse_args(list(argv))


async def retain(publisher: Publisher, topic: str, payload: bytes) -> None:
    info = publisher.client.publish(topic, payload, qos=1, retain=True)
    await asyncio.to_thread(info.wait_for_publish, 5)


async def test_listen_to_live_messages_then_check_the_draft(
    mosquitto: Mosquitto, publisher: Publisher, tmp_path: Path
) -> None:
    root = f"listen-{uuid.uuid4().hex[:8]}"
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    # A retained message reaches us when the subscription is made: then live ones will too.
    await retain(publisher, f"{root}/packer/probe", b"1")
    args = parsed(url, "--topic", f"{root}/#", "--format", "yaml")
    source = listener_source(listen_cli.connection_options(args), args.topic)
    log, stop = TopicLog(), asyncio.Event()
    task = asyncio.create_task(listen(source, 600, 10, log=log, stop=stop))
    try:
        await eventually(lambda: log.messages == 1, what="the retained probe")
        messages = [
            (f"{root}/packer/status", {"ts": "2026-03-01T06:00:00Z", "state": 1, "reason": 0}),
            (f"{root}/packer/status", {"state": 3, "reason": 101, "alarm": True}),
            (f"{root}/packer/status", {"state": 1, "axes": [{"pos": 1.5}, {"pos": -2}]}),
            (f"{root}/packer/temp", b"21.5"),
            (f"{root}/packer/temp", b"22"),
            (f"{root}/packer/mode", b"RUNNING"),
            (f"{root}/packer/raw", b"\xff\xfe\x00"),
            (f"{root}/packer/mixed", {"v": 1}),
            (f"{root}/packer/mixed", b"oops{"),
            (f"{root}/other/x", b""),
            (f"elsewhere-{root}/packer/x", b"1"),  # not below the filter
        ]
        for topic, payload in messages:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            await publisher.publish(topic, data)
        await eventually(lambda: log.messages == 11, what=lambda: f"{log.messages} messages")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await retain(publisher, f"{root}/packer/probe", b"")  # none left behind
    assert task.result() is log
    p = f"{root}/packer"
    assert listen_cli.rows(log) == [
        (f"{root}/other/x", "(empty)", "1/1", "", ""),
        (f"{p}/mixed", "v", "1/2", "number", "1"),
        (f"{p}/mixed", "(payload)", "1/2", "text", "oops{"),
        (f"{p}/mode", "(payload)", "1/1", "text", "RUNNING"),
        (f"{p}/probe", "(payload)", "1/1", "number", "1"),
        (f"{p}/raw", "(binary)", "1/1", "", ""),
        (f"{p}/status", "ts", "1/3", "string", '"2026-03-01T06:00:00Z"'),
        (f"{p}/status", "state", "3/3", "number", "1"),
        (f"{p}/status", "reason", "2/3", "number", "101"),
        (f"{p}/status", "alarm", "1/3", "boolean", "true"),
        (f"{p}/status", "axes.0.pos", "1/3", "number", "1.5"),
        (f"{p}/status", "axes.1.pos", "1/3", "number", "-2"),
        (f"{p}/temp", "(payload)", "2/2", "number", "22"),
    ]

    out = io.StringIO()
    listen_cli.print_yaml(log, args, out, 600)
    lines = out.getvalue().splitlines()
    entry = "  - {{machine: packer, name: {}, signal: measurement, topic: {}{}}}  # {}".format
    assert lines[lines.index("tags:") + 1 :] == [
        entry("mixed_v", f"{p}/mixed", ", field: v", "number in 1/2 message(s)"),
        entry("mode", f"{p}/mode", "", "plain text in 1/1 message(s)"),
        entry("probe", f"{p}/probe", "", "plain number in 1/1 message(s)"),
        entry("status_ts", f"{p}/status", ", field: ts", "string in 1/3 message(s)"),
        entry("status_state", f"{p}/status", ", field: state", "number in 3/3 message(s)"),
        entry("status_reason", f"{p}/status", ", field: reason", "number in 2/3 message(s)"),
        entry("status_alarm", f"{p}/status", ", field: alarm", "boolean in 1/3 message(s)"),
        entry(
            "status_axes_0_pos", f"{p}/status", ", field: axes.0.pos", "number in 1/3 message(s)"
        ),
        entry(
            "status_axes_1_pos", f"{p}/status", ", field: axes.1.pos", "number in 1/3 message(s)"
        ),
        entry("temp", f"{p}/temp", "", "plain number in 2/2 message(s)"),
    ]
    assert f"# left out (nothing to read: binary, empty or {{}} payloads): {root}/other/x" in lines
    assert f"# left out (nothing to read: binary, empty or {{}} payloads): {p}/raw" in lines

    # Pasted under an mqtt source as printed: `shopfloor check` accepts it.
    config = tmp_path / "plant.yaml"
    config.write_text(
        "lines:\n  - id: line1\n    machines:\n"
        "      - {id: packer, ideal_cycle_s: 6, state_map: {1: running, 3: down}}\n"
        f"sources:\n  - name: gateway\n    protocol: mqtt\n    host: 127.0.0.1\n"
        f"    port: {mosquitto.port}\n" + textwrap.indent(out.getvalue(), "    ")
    )
    code, stdout, stderr = await shopfloor("check", str(config))
    assert (code, stderr) == (0, "")
    assert stdout == f"{config}: OK (1 line(s), 1 machine(s), 1 source(s), 10 tag(s))\n"


async def test_the_command_lists_retained_messages(
    mosquitto: Mosquitto, publisher: Publisher
) -> None:
    """The whole command in its own process: the broker hands a new subscription its retained
    messages, so they are in the listing however the seconds fall."""
    root = f"listen-{uuid.uuid4().hex[:8]}"
    retained = [(f"{root}/filler/status", b'{"state": 1}'), (f"{root}/filler/speed", b"612")]
    for topic, payload in retained:
        await retain(publisher, topic, payload)
    try:
        url = f"mqtt://127.0.0.1:{mosquitto.port}"
        code, out, err = await shopfloor("listen", url, "--topic", f"{root}/#", "--seconds", "2")
    finally:
        for topic, _ in retained:
            await retain(publisher, topic, b"")  # an empty retained message deletes it
    assert (code, err) == (0, f"listening to {url} for 2 s (Ctrl-C ends it early): {root}/#\n")
    width = len(f"{root}/filler/status")
    assert out.splitlines() == [
        f"{'TOPIC':<{width}}  FIELD      MESSAGES  TYPE    LAST VALUE",
        f"{root}/filler/speed   (payload)  1/1       number  612",
        f"{root}/filler/status  state      1/1       number  1",
        "2 topic(s), 2 message(s) in 2 s",
    ]


async def test_ctrl_c_ends_early_and_shows_what_arrived(
    mosquitto: Mosquitto, publisher: Publisher
) -> None:
    root = f"listen-{uuid.uuid4().hex[:8]}"
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    await retain(publisher, f"{root}/m/speed", b"5")
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "collector.cli", "listen", url, "--topic", f"{root}/#"],
        *["--seconds", "600"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert line.decode() == f"listening to {url} for 600 s (Ctrl-C ends it early): {root}/#\n"
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await retain(publisher, f"{root}/m/speed", b"")
        if proc.returncode is None:
            proc.kill()
    assert (proc.returncode, err) == (0, b"")
    lines = out.decode().splitlines()
    # The retained message may or may not have arrived before the signal: either is shown.
    assert lines[-1] in (
        "0 topic(s), 0 message(s) until interrupted",
        "1 topic(s), 1 message(s) until interrupted",
    )
    assert lines[0].split() == ["TOPIC", "FIELD", "MESSAGES", "TYPE", "LAST", "VALUE"]
    assert lines[1:-1] in ([], [f"{root}/m/speed  (payload)  1/1       number  5"])


async def test_no_broker_is_an_error_not_a_wait() -> None:
    port = free_port()  # nothing listens there
    source = listener_source({"host": "127.0.0.1", "port": port}, "#")
    with pytest.raises(TransportError, match=f"cannot connect to 127.0.0.1:{port}"):
        await listen(source, 1, 30)
    out = io.StringIO()
    code = await asyncio.to_thread(listen_cli.run, parsed(f"mqtt://127.0.0.1:{port}"), out)
    assert (code, out.getvalue()) == (1, "")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["http://127.0.0.1"],
            "error: 'http://127.0.0.1' is not mqtt://host[:port] or mqtts://host[:port]\n",
        ),
        (
            ["mqtt://127.0.0.1", "--topic", "a/b#"],
            "error: --topic: '#' must be a whole last segment: 'a/b#'\n",
        ),
        (
            ["mqtt://127.0.0.1:70000"],
            "error: 'mqtt://127.0.0.1:70000' is not mqtt://host[:port] or mqtts://host[:port]\n",
        ),
    ],
)
def test_bad_url_or_filter(argv: list[str], error: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert listen_cli.run(parsed(*argv)) == 2
    assert capsys.readouterr().err == error


def test_connection_options_from_url_and_flags(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    args = parsed(
        "mqtts://broker.plant", "--username", "u", "--password", "p", "--ca-file", str(ca)
    )
    assert listen_cli.connection_options(args) == {
        "host": "broker.plant",
        "port": 8883,
        "protocol_version": "5",
        "username": "u",
        "password": "p",
        "tls": {"ca_file": ca, "cert_file": None, "key_file": None, "insecure": False},
    }
    source = listener_source(listen_cli.connection_options(args), "#")
    assert (source.qos, source.clean_start, source.session_expiry_s) == (0, True, 0)
    assert source.effective_client_id.startswith("shopfloor-listen-")
    args = parsed("mqtt://127.0.0.1:1884", "--protocol-version", "3.1.1")
    assert listen_cli.connection_options(args) == {
        "host": "127.0.0.1",
        "port": 1884,
        "protocol_version": "3.1.1",
    }


def test_docs_show_what_the_command_prints() -> None:
    """docs/adapters/mqtt.md's two listings are this code's output for the messages below."""
    log = TopicLog()
    status = [("2026-03-02T07:14:05.250Z", 2, 201), ("2026-03-02T07:14:09.000Z", 1, 0)]
    for ts, state, reason in status:
        log.add("demo/line1/packer/status", _json({"ts": ts, "state": state, "reason": reason}))
    for i in range(3):
        log.add(
            "demo/line1/packer/part",
            _json({"ts": f"2026-03-02T07:14:1{i}.500Z", "good": 1, "reject": 0}),
        )
    log.add(
        "demo/line1/packer/process", _json({"ts": "2026-03-02T07:14:10.000Z", "temperature": 24.31})
    )
    log.add("demo/line1/wrapper/mode", b"AUTO")
    page = (Path(__file__).resolve().parents[2] / "docs" / "adapters" / "mqtt.md").read_text()
    command = "shopfloor listen mqtt://127.0.0.1:18830 --topic 'demo/line1/#' --seconds 3"
    table, draft = io.StringIO(), io.StringIO()
    listen_cli.print_table(log, 3, table)
    assert f"```\n$ {command}\n{table.getvalue()}```\n" in page
    args = parsed(
        "mqtt://127.0.0.1:18830", "--topic", "demo/line1/#", "--seconds", "3", "--format", "yaml"
    )
    listen_cli.print_yaml(log, args, draft, 3)
    assert f"```\n$ {command} --format yaml\n{draft.getvalue()}```\n" in page


def _json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
