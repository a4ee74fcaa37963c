"""One line `l1` with one machine `m`, read from one MQTT source `gw` on a test broker: the
config of the tests that send a collector messages and look at what it stored."""

from __future__ import annotations

from collections.abc import Sequence


def mqtt_line(
    broker_port: int,
    client: str,
    tags: Sequence[str],
    *,
    source: Sequence[str] = (),
    settings: Sequence[str] = (),
) -> str:
    """The YAML. `tags`: flow mappings (`{machine: m, name: a, topic: t/a}`); `source`: more
    keys of the source, `settings`: the settings section's keys (`key: value` each)."""
    text = [
        "lines:",
        "  - id: l1",
        "    machines:",
        "      - {id: m, ideal_cycle_s: 1, state_map: {1: running, 2: down}}",
        "sources:",
        "  - name: gw",
        "    protocol: mqtt",
        "    host: 127.0.0.1",
        f"    port: {broker_port}",
        f"    client_id: shopfloor-{client}",
        *(f"    {key}" for key in source),
        "    tags:",
        *(f"      - {tag}" for tag in tags),
    ]
    if settings:
        text += ["settings:", *(f"  {key}" for key in settings)]
    return "\n".join(text) + "\n"
