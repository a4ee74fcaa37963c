"""Modbus TCP server front end (pymodbus SimDevice API): one device per unit id of the source.

Each unit's tables are one block from address 0 to its highest tag (gaps read as zeros, so
merged reads work). Values live in our own register image, updated per model event; pymodbus's
`action` hook copies the image into the block on every read, so a request sees one consistent
instant. Writes are refused: the PLC is the only writer (docs/simulators.md, Modbus TCP).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from config.simulation import SimulationConfig
from config.sources.modbus import ModbusSource, ModbusTag, RegisterKind
from simulators.frontends import TimedEvent
from simulators.values import MachineImage, encode_registers, modbus_value, signal_of

log = logging.getLogger(__name__)

# Function code -> table; the SimDevice tuple order is (coils, discrete inputs, holding, input).
FUNCTION_TABLE = {
    1: RegisterKind.COIL,
    2: RegisterKind.DISCRETE_INPUT,
    3: RegisterKind.HOLDING_REGISTER,
    4: RegisterKind.INPUT_REGISTER,
}
MAX_REGISTERS = 125  # most registers one read may ask for (Modbus spec)
MAX_BITS = 2000  # most coils or discrete inputs one read may ask for
TABLE_ORDER = tuple(FUNCTION_TABLE.values())


class ModbusFrontEnd:
    def __init__(self, source: ModbusSource, sim: SimulationConfig) -> None:
        if source.framer != "tcp":
            raise ValueError(f"source {source.name}: the simulator speaks Modbus TCP framing only")
        self.name = source.name
        self.source = source
        self.sim = sim
        self.images: dict[str, MachineImage] = {t.machine: MachineImage() for t in source.tags}
        self._tags: dict[str, list[tuple[int, ModbusTag]]] = {}
        # (unit, table) -> address -> register word, or for bit tables bit address -> bool
        self.image: dict[tuple[int, RegisterKind], dict[int, int]] = {}
        for tag in source.tags:
            signal_of(tag)  # fail at start on tags the simulator cannot serve
            unit = tag.unit_id if tag.unit_id is not None else source.unit_id
            self._tags.setdefault(tag.machine, []).append((unit, tag))
            for table in RegisterKind:
                self.image.setdefault((unit, table), {})
        for machine in self._tags:
            self._refresh(machine, None)
        self._server: ModbusTcpServer | None = None
        self.reads = 0

    @property
    def units(self) -> list[int]:
        return sorted({unit for unit, _ in self.image})

    def describe(self) -> str:
        return (
            f"Modbus TCP server {self.source.host}:{self.source.port} "
            f"(unit ids {', '.join(map(str, self.units))})"
        )

    def _refresh(self, machine: str, changed: set[str] | None) -> None:
        image = self.images[machine]
        for unit, tag in self._tags[machine]:
            signal = signal_of(tag)
            if changed is not None and signal not in changed:
                continue
            value = modbus_value(tag, image, self.sim.machine(machine).counter_bits)
            table = self.image[(unit, tag.table)]
            if tag.table.is_bit:
                table[tag.address] = int(bool(value))
            elif tag.bit is not None:
                word = table.get(tag.address, 0) & ~(1 << tag.bit)
                table[tag.address] = word | (int(bool(value)) << tag.bit)
            else:
                for i, word in enumerate(encode_registers(tag, value)):
                    table[tag.address + i] = word

    def _device(self, unit: int) -> SimDevice:
        blocks: list[list[SimData]] = []
        for table in TABLE_ORDER:
            tags = [
                t
                for pairs in self._tags.values()
                for u, t in pairs
                if u == unit and t.table is table
            ]
            size = max((t.address + t.register_count for t in tags), default=1)
            if table.is_bit:
                size = (size + 15) // 16 * 16
                blocks.append([SimData(0, count=size, values=False, datatype=SimType.BITS)])
            else:
                blocks.append([SimData(0, count=size, values=0, datatype=SimType.REGISTERS)])
        return SimDevice(
            id=unit,
            simdata=(blocks[0], blocks[1], blocks[2], blocks[3]),
            action=functools.partial(self._action, unit),
        )

    def _no_such_unit(self) -> SimDevice:
        """Unit id 0 is pymodbus's catch-all: answer other unit ids as a gateway would (0x0B).

        The catch-all spans one maximal read from address 0; beyond it pymodbus answers 0x02.
        """

        async def refuse(*_args: object) -> ExcCodes:
            return ExcCodes.GATEWAY_NO_RESPONSE

        bits = [SimData(0, values=[False] * MAX_BITS, datatype=SimType.BITS)]
        regs = [SimData(0, values=[0] * MAX_REGISTERS, datatype=SimType.REGISTERS)]
        return SimDevice(id=0, simdata=(bits, list(bits), regs, list(regs)), action=refuse)

    async def _action(
        self,
        unit: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: object,
    ) -> ExcCodes | None:
        """pymodbus calls this before answering: refuse writes, copy our image into the block."""
        table = FUNCTION_TABLE.get(function_code)
        if set_values is not None or table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        self.reads += 1
        image = self.image[(unit, table)]
        if table.is_bit:
            for bit_address, on in image.items():
                index = bit_address // 16 - start_address
                mask = 1 << (bit_address % 16)
                registers[index] = (registers[index] | mask) if on else (registers[index] & ~mask)
        else:
            for reg_address, word in image.items():
                registers[reg_address - start_address] = word
        return None

    async def start(self) -> None:
        devices = [self._device(unit) for unit in self.units]
        if 0 not in self.units:
            devices.append(self._no_such_unit())
        server = ModbusTcpServer(devices, address=(self.source.host, self.source.port))
        await server.serve_forever(background=True)
        self._server = server

    def prime(self, events: Sequence[TimedEvent]) -> None:
        for event, _ts in events:
            image = self.images.get(event.machine)
            if image is not None:
                changed = image.apply(event)
                if changed:
                    self._refresh(event.machine, changed)

    async def publish(self, events: Sequence[TimedEvent]) -> None:
        self.prime(events)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
