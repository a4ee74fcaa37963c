"""`shopfloor listen mqtt://host:port`: the topics and JSON fields a broker carries for N
seconds, as a table or as a draft `tags:` block for an MQTT source (`--format yaml`, named by
adapters.tag_draft's rule).

The collector's CLI owns the command; it calls `configure_parser` on its sub-parser and
`run(args)` for the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import ValidationError

from adapters.errors import AdapterError
from adapters.mqtt import transport
from adapters.mqtt.listen import (
    BINARY,
    EMPTY,
    JSON_FIELDS,
    PLAIN,
    TopicLog,
    listen,
    listener_source,
)
from adapters.tag_draft import Found, add_draft_arguments, comment, draft_tags, render_tags

PASSWORD_ENV = "SHOPFLOOR_MQTT_PASSWORD"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
MAX_SAMPLE = 40  # characters of a value shown


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Subscribe for a while (read-only, QoS 0, clean session) and list the topics seen, "
        "their message counts and their JSON fields: what an MQTT source's tags name."
    )
    parser.add_argument(
        "url", help="mqtt://host[:port] (default 1883) or mqtts://host[:port] (TLS)"
    )
    parser.add_argument(
        "--topic", default="#", metavar="FILTER", help="topic filter to subscribe (default: #)"
    )
    parser.add_argument(
        "--seconds",
        type=_positive,
        default=10.0,
        metavar="S",
        help="how long to listen (default 10)",
    )
    add_draft_arguments(parser, "mqtt", "the topics")
    parser.add_argument("--username")
    parser.add_argument("--password", help=f"default: ${PASSWORD_ENV}")
    parser.add_argument("--protocol-version", choices=["5", "3.1.1"], default="5")
    parser.add_argument("--client-id", help="default: shopfloor-listen-<random>")
    parser.add_argument("--ca-file", type=Path, help="CA bundle that signed the broker (TLS)")
    parser.add_argument("--cert-file", type=Path, help="client certificate (mutual TLS)")
    parser.add_argument("--key-file", type=Path)
    parser.add_argument(
        "--tls-insecure", action="store_true", help="skip the host name check (test brokers)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        metavar="S",
        help="seconds to wait for the broker (default 10)",
    )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def connection_options(args: argparse.Namespace) -> dict[str, Any]:
    """An MQTT source's connection keys from the URL and options; ValueError for a bad URL."""
    parts = urlsplit(args.url)
    try:
        port = parts.port  # ValueError beyond 65535
    except ValueError:
        port = 0
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port == 0:
        raise ValueError(f"{args.url!r} is not mqtt://host[:port] or mqtts://host[:port]")
    options: dict[str, Any] = {
        "host": parts.hostname,
        "port": port or DEFAULT_PORTS[parts.scheme],
        "protocol_version": args.protocol_version,
    }
    password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV)
    if args.username is not None:
        options["username"] = args.username
        options["password"] = password
    tls_files = (args.ca_file, args.cert_file, args.key_file)
    if parts.scheme == "mqtts" or args.tls_insecure or any(f is not None for f in tls_files):
        options["tls"] = {
            "ca_file": args.ca_file,
            "cert_file": args.cert_file,
            "key_file": args.key_file,
            "insecure": args.tls_insecure,
        }
    return options


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        source = listener_source(connection_options(args), args.topic, args.client_id)
    except ValidationError as exc:
        for e in exc.errors():
            key = "--topic" if e["loc"][0] == "tags" else ".".join(map(str, e["loc"]))
            print(f"error: {key}: {e['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log, seconds = TopicLog(), args.seconds  # seconds: None once interrupted

    def listening() -> None:
        print(
            f"listening to {args.url} for {seconds:g} s (Ctrl-C ends it early): {args.topic}",
            file=sys.stderr,
            flush=True,
        )

    try:
        with _quiet_transport(getattr(args, "verbose", 0)):
            asyncio.run(listen(source, seconds, args.timeout, log=log, on_listening=listening))
    except (AdapterError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # what arrived so far is still worth showing
        seconds = None
    if args.format == "yaml":
        print_yaml(log, args, out, seconds)
    else:
        print_table(log, seconds, out)
    return 0


def _during(seconds: float | None) -> str:
    return f"in {seconds:g} s" if seconds is not None else "until interrupted"


@contextlib.contextmanager
def _quiet_transport(verbose: int) -> Iterator[None]:
    """Without -v, no transport log lines: they say it will keep trying, and this command
    reports the error itself and ends."""
    logger = logging.getLogger(transport.__name__)
    saved = logger.level
    if not verbose:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(saved)


def _sample(value: str) -> str:
    text = comment(value)
    return text if len(text) <= MAX_SAMPLE else text[: MAX_SAMPLE - 1] + "…"


def rows(log: TopicLog) -> list[tuple[str, str, str, str, str]]:
    """(topic, field, messages, type, last value), topics sorted, fields as first seen."""
    table = []
    for topic, seen in sorted(log.topics.items()):
        n = seen.messages
        for path, f in seen.fields.items():
            value = _sample(json.dumps(f.sample, ensure_ascii=False))
            table.append((topic, path, f"{f.messages}/{n}", "/".join(f.types), value))
        if seen.fields_left_out:
            table.append((topic, f"({seen.fields_left_out} more fields)", "", "", ""))
        if seen.kinds[PLAIN]:
            types = "/".join(seen.plain_types)
            value = _sample(seen.sample or "")
            table.append((topic, "(payload)", f"{seen.kinds[PLAIN]}/{n}", types, value))
        for kind in (BINARY, EMPTY):
            if seen.kinds[kind]:
                table.append((topic, f"({kind})", f"{seen.kinds[kind]}/{n}", "", ""))
    return table


def print_table(log: TopicLog, seconds: float | None, out: TextIO) -> None:
    header = ("TOPIC", "FIELD", "MESSAGES", "TYPE", "LAST VALUE")
    table = [header, *rows(log)]
    widths = [max(len(comment(r[i])) for r in table) for i in range(4)]
    for r in table:
        cells = [f"{comment(c):<{w}}" for c, w in zip(r, widths, strict=False)]
        print("  ".join([*cells, r[4]]).rstrip(), file=out)
    print(f"{len(log.topics)} topic(s), {log.messages} message(s) {_during(seconds)}", file=out)


def topic_root(topic_filter: str) -> list[str]:
    """The filter's fixed levels above the topics it names: those before its first wildcard,
    or, for a plain topic, all but its last."""
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if level in ("+", "#"):
            return levels[:i]
    return levels[:-1]


def found(log: TopicLog, topic_filter: str) -> tuple[list[Found], list[str]]:
    """Draft entries (JSON fields; plain payloads as tags without field), and the topics left
    out because nothing in them can be read (binary or empty payloads only)."""
    root = topic_root(topic_filter)
    items, left_out = [], []
    for topic, seen in sorted(log.topics.items()):
        levels = tuple(topic.split("/")[len(root) :])
        for path, f in seen.fields.items():
            note = f"{'/'.join(f.types)} in {f.messages}/{seen.messages} message(s)"
            items.append(
                Found((*levels, *path.split(".")), (("topic", topic), ("field", path)), note)
            )
        if seen.kinds[PLAIN] and not seen.kinds[JSON_FIELDS]:
            types, count = "/".join(seen.plain_types), seen.kinds[PLAIN]
            note = f"plain {types} in {count}/{seen.messages} message(s)"
            items.append(Found(levels, (("topic", topic),), note))
        if not seen.kinds[PLAIN] and not seen.fields:
            left_out.append(topic)
    return items, left_out


def print_yaml(log: TopicLog, args: argparse.Namespace, out: TextIO, seconds: float | None) -> None:
    items, left_out = found(log, args.topic)
    root = topic_root(args.topic)
    tags = draft_tags(items, machine=args.machine, root_name=root[-1] if root else None)
    header = [
        f"shopfloor listen {args.url} --topic {args.topic}: {log.messages} message(s) on "
        f"{len(log.topics)} topic(s) {_during(seconds)}",
        "Paste under an mqtt source. machine: the first topic level below the filter's fixed",
        "levels (or the last of them); TODO where none was found. name: the other levels and",
        "the field. Review both.",
        *(f"left out (nothing to read: binary, empty or {{}} payloads): {t}" for t in left_out),
    ]
    out.write(render_tags(tags, header))
