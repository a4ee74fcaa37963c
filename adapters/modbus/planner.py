"""Tags -> the fewest read requests: pure, no I/O.

Tags of one unit and one table are sorted by address and merged while the merged request stays
within the spec's limit and the unread gap between neighbours is at most `max_gap` addresses
(registers, or bits for coils and discrete inputs). Reading a few unused registers is cheaper
than a second round trip; a device that refuses reads of unmapped addresses needs `max_gap: 0`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from adapters.modbus.codec import RequestDecoder, Response
from config.sources.modbus import ModbusTag, RegisterKind

# Modbus Application Protocol v1.1b3, 6.1-6.4: quantity limits of one read request.
MAX_REGISTERS_PER_READ = 125  # read holding / input registers (FC 03, 04)
MAX_BITS_PER_READ = 2000  # read coils / discrete inputs (FC 01, 02)


# Read function code of each table; requests are ordered by it, as the spec lists them.
FUNCTION_CODES = {
    RegisterKind.COIL: 1,
    RegisterKind.DISCRETE_INPUT: 2,
    RegisterKind.HOLDING_REGISTER: 3,
    RegisterKind.INPUT_REGISTER: 4,
}


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read: `count` addresses of `table` from `address` on `unit_id`, serving `tags`.

    Made once when the schedule is planned (or a request split), it carries what decoding each
    response needs, so polling does not recompute it per reading: the tags' reading addresses
    and a `RequestDecoder`. Neither takes part in equality.
    """

    unit_id: int
    table: RegisterKind
    address: int
    count: int
    tags: tuple[ModbusTag, ...]
    addresses: tuple[str, ...] = field(init=False, repr=False, compare=False)
    decoder: RequestDecoder = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        decoder = RequestDecoder(self.table, self.address, self.count, self.tags)
        object.__setattr__(self, "addresses", tuple(t.reading_address for t in self.tags))
        object.__setattr__(self, "decoder", decoder)

    def slice_for(self, tag: ModbusTag, data: Response) -> Response:
        """The part of this request's response that holds `tag`."""
        start = tag.address - self.address
        return data[start : start + tag.register_count]


def plan(tags: Iterable[tuple[int, ModbusTag]], *, max_gap: int) -> list[ReadRequest]:
    """Requests for `(unit_id, tag)` pairs, ordered by unit, function code and address.

    Tags that share a reading address (the same registers, decoded the same way) are read and
    decoded once: the first stands for all, and the collector gives its readings to each."""
    groups: dict[tuple[int, RegisterKind], list[ModbusTag]] = defaultdict(list)
    seen: set[tuple[int, str]] = set()
    for unit_id, tag in tags:
        if (unit_id, tag.reading_address) in seen:
            continue
        seen.add((unit_id, tag.reading_address))
        groups[(unit_id, tag.table)].append(tag)
    requests: list[ReadRequest] = []
    by_unit_and_code = sorted(groups.items(), key=lambda g: (g[0][0], FUNCTION_CODES[g[0][1]]))
    for (unit_id, table), members in by_unit_and_code:
        most = MAX_BITS_PER_READ if table.is_bit else MAX_REGISTERS_PER_READ
        members.sort(key=lambda t: (t.address, t.register_count))
        start = end = -1
        batch: list[ModbusTag] = []
        for tag in members:
            tag_end = tag.address + tag.register_count
            if tag.register_count > most:
                raise ValueError(f"{tag.key}: {tag.register_count} addresses exceed {most}")
            if batch and tag.address - end <= max_gap and max(end, tag_end) - start <= most:
                batch.append(tag)
                end = max(end, tag_end)
                continue
            if batch:
                requests.append(ReadRequest(unit_id, table, start, end - start, tuple(batch)))
            batch, start, end = [tag], tag.address, tag_end
        if batch:
            requests.append(ReadRequest(unit_id, table, start, end - start, tuple(batch)))
    return requests
