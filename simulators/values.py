"""What a tag shows: the machine image every front end keeps, and the Modbus register codec.

Front ends apply the model's events one by one to their own `MachineImage`, so each published
value carries the timestamp of the event that produced it, exactly as the truth file records it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from config.sources.modbus import ByteOrder, DataType, ModbusTag
from config.tags import SignalKind, TagBase
from simulators.model import CounterReset, Event, PartDone, ProcessSample, StateChange

COUNTERS = ("good_count", "reject_count", "total_count")
MEASUREMENTS = ("temperature", "speed", "pressure", "running")
SIGNALS = ("state", "stop_reason", *COUNTERS, *MEASUREMENTS)


class UnknownTagError(ValueError):
    """A tag asks for a value the simulated machine does not have."""


def signal_of(tag: TagBase) -> str:
    """The image signal that feeds `tag`: its signal kind, or for measurements its name."""
    if tag.signal is not SignalKind.MEASUREMENT:
        return tag.signal.value
    if tag.name in MEASUREMENTS:
        return tag.name
    raise UnknownTagError(
        f"tag {tag.key}: the simulator has no measurement {tag.name!r}; it serves "
        f"{', '.join(MEASUREMENTS)} and the signals {', '.join(SIGNALS[:5])}"
    )


def counter_modulus(tag: TagBase, bits: int | None, register_bits: int | None = None) -> int:
    """Counter width: the simulation's override, else the tag's wrap, else the register's."""
    if bits is not None:
        return 1 << bits
    if tag.wrap is not None:
        return tag.wrap
    return 1 << (register_bits or 32)


def _initial_values() -> dict[str, float | int | bool]:
    values: dict[str, float | int | bool] = dict.fromkeys(SIGNALS, 0)
    values["running"] = False
    return values


@dataclass
class MachineImage:
    """Current PLC values of one machine; counters unwrapped (tags apply their modulus)."""

    values: dict[str, float | int | bool] = field(default_factory=_initial_values)

    def apply(self, event: Event) -> set[str]:
        """Update from one event; return the signals whose value changed."""
        new: dict[str, float | int | bool]
        if isinstance(event, StateChange):
            new = {
                "state": event.state,
                "stop_reason": event.reason,
                "running": event.state_class.value == "running",
            }
        elif isinstance(event, PartDone):
            new = {
                "good_count": event.good_counter,
                "reject_count": event.reject_counter,
                "total_count": event.total_counter,
            }
        elif isinstance(event, CounterReset):
            new = dict.fromkeys(COUNTERS, 0)
        elif isinstance(event, ProcessSample):
            new = {
                "temperature": event.temperature,
                "pressure": event.pressure,
                "speed": event.speed,
            }
        else:  # pragma: no cover - exhaustive over Event
            raise TypeError(event)
        changed = {k for k, v in new.items() if self.values.get(k) != v}
        self.values.update(new)
        return changed


# -- Modbus codec ---------------------------------------------------------------------------

_STRUCT = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}


def order_bytes(big_endian: bytes, order: ByteOrder) -> bytes:
    """Rearrange a big-endian (ABCD) value into `order`, as the device sends it.

    ABCD: big endian; DCBA: little endian; BADC: bytes swapped in each word; CDAB: words in
    reverse order (the usual "word swap"). Each is its own inverse, so the adapter can use it too.
    """
    if order is ByteOrder.ABCD:
        return big_endian
    if order is ByteOrder.DCBA:
        return big_endian[::-1]
    words = [big_endian[i : i + 2] for i in range(0, len(big_endian), 2)]
    if order is ByteOrder.BADC:
        return b"".join(w[::-1] for w in words)
    return b"".join(reversed(words))


def encode_registers(tag: ModbusTag, value: float | int | bool) -> list[int]:
    """The register words of `value` for `tag` (raw = (value - offset) / scale)."""
    if tag.type is DataType.BOOL:
        return [1 if value else 0]
    if tag.type is DataType.STRING:
        raise UnknownTagError(f"tag {tag.key}: the simulator serves no string tags")
    raw: float | int = value
    if tag.scale != 1.0 or tag.offset != 0.0:
        raw = (float(value) - tag.offset) / tag.scale
    fmt = _STRUCT[tag.type]
    if fmt not in "fd":
        bits = struct.calcsize(fmt) * 8
        raw = round(raw)
        raw = raw % (1 << bits) if fmt.isupper() else raw
    data = order_bytes(struct.pack(f">{fmt}", raw), tag.byte_order)
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def modbus_value(
    tag: ModbusTag, image: MachineImage, counter_bits: int | None
) -> float | int | bool:
    """The value `tag` shows now: counters wrapped at the tag's width."""
    signal = signal_of(tag)
    value = image.values[signal]
    if signal in COUNTERS:
        return int(value) % counter_modulus(tag, counter_bits, 16 * tag.register_count)
    return value
