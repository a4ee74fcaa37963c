"""Modbus TCP source options, in the Modbus spec's own words.

One source is one TCP connection (to a PLC or to a gateway with several devices behind it, each
with its own `unit_id`). `devices:` gives a device its own poll interval; tags pick their device
with `unit_id`. See docs/adapters/modbus.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from config.bounds import Bounds, PollInterval, Port, ReconnectDelay, Timeout, UnitId
from config.plant import Ident, Model
from config.tags import TagBase


class RegisterKind(StrEnum):
    HOLDING_REGISTER = "holding_register"
    INPUT_REGISTER = "input_register"
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"

    @property
    def is_bit(self) -> bool:
        return self in (RegisterKind.COIL, RegisterKind.DISCRETE_INPUT)


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BOOL = "bool"

    @property
    def is_number(self) -> bool:
        return self not in (DataType.STRING, DataType.BOOL)


_WIDTH = {
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT64: 4,
}


class ByteOrder(StrEnum):
    """Order of the value's bytes A (most significant) .. D across registers."""

    ABCD = "ABCD"
    DCBA = "DCBA"
    BADC = "BADC"
    CDAB = "CDAB"


class ModbusTag(TagBase):
    # Written `register:` in YAML, as Telegraf and the spec say it; `register` itself is taken
    # by pydantic's ABC base.
    table: RegisterKind = Field(default=RegisterKind.HOLDING_REGISTER, alias="register")
    address: Annotated[int, Bounds(0, 65535)] = Field(description="0-based protocol address")
    type: DataType = DataType.UINT16
    byte_order: ByteOrder = ByteOrder.ABCD
    bit: Annotated[int, Bounds(0, 15)] | None = Field(
        default=None, description="one bit of a register"
    )
    length: Annotated[int, Bounds(1, 125)] | None = Field(
        default=None, description="registers of a string"
    )
    scale: float = 1.0
    offset: float = 0.0
    unit_id: UnitId | None = Field(default=None, description="overrides the source's")

    @model_validator(mode="after")
    def _shape(self) -> ModbusTag:
        if self.scale == 0:
            raise ValueError("scale 0 would make every value 0")
        if self.table.is_bit and self.type not in (DataType.BOOL, DataType.UINT16):
            raise ValueError(f"a {self.table.value} holds one bit: type must be bool")
        if self.type is DataType.STRING and self.length is None:
            raise ValueError("type string needs length (registers)")
        if self.length is not None and self.type is not DataType.STRING:
            raise ValueError("length applies only to type string")
        if self.bit is not None and self.table.is_bit:
            raise ValueError("bit selects a bit of a register, not of a coil or discrete input")
        if self.bit is not None and self.type not in (
            DataType.BOOL,
            DataType.UINT16,
            DataType.INT16,
        ):
            raise ValueError("bit selects a bit of one register: type must be bool")
        if (self.scale != 1.0 or self.offset != 0.0) and (
            not self.type.is_number or self.bit is not None or self.table.is_bit
        ):
            raise ValueError("scale and offset apply only to numbers")
        if self.address + self.register_count > 65536:
            raise ValueError("the value runs past address 65535")
        return self

    @property
    def register_count(self) -> int:
        """How many registers (or bits, for coils and discrete inputs) the value occupies."""
        if self.table.is_bit or self.bit is not None:
            return 1
        if self.type is DataType.STRING:
            return self.length or 1
        return _WIDTH.get(self.type, 1)

    @property
    def reading_address(self) -> str:
        """Where and how the value is decoded: unit, table, address, bit, type (and a string's
        length), order, and scale and offset when set. Tags that read the same registers the
        same way share it: the adapter reads them once and the collector stores the reading for
        each tag; decoded differently, they are different addresses."""
        bit = f".{self.bit}" if self.bit is not None else ""
        unit = "" if self.unit_id is None else self.unit_id
        where = f"{unit}/{self.table.value}/{self.address}{bit}"
        length = f"[{self.length}]" if self.length is not None else ""
        linear = ""
        if self.scale != 1.0 or self.offset != 0.0:
            linear = f"*{self.scale!r}+{self.offset!r}"
        return f"{where}/{self.type.value}{length}/{self.byte_order.value}{linear}"


class ModbusDevice(Model):
    """A device (unit) behind the connection with its own cadence, e.g. a slow drive."""

    unit_id: UnitId
    poll_interval_s: PollInterval


class ModbusSource(Model):
    protocol: Literal["modbus"]
    name: Ident
    host: str
    port: Port = 502
    framer: Literal["tcp", "rtu"] = Field(default="tcp", description="rtu = RTU over TCP")
    unit_id: UnitId = 1
    poll_interval_s: PollInterval = 1.0
    timeout_s: Timeout = 1.0
    retries: Annotated[int, Bounds(0, 10)] = Field(
        default=2, description="further attempts after a timeout"
    )
    reconnect_delay_s: ReconnectDelay = Field(
        default=0.5,
        description="first wait after a failed connect; doubles up to reconnect_delay_max_s",
    )
    reconnect_delay_max_s: ReconnectDelay = 30.0
    max_gap: Annotated[int, Bounds(0, 2000)] = Field(
        default=8, description="registers (or bits) of gap a merged request may read"
    )
    devices: list[ModbusDevice] = Field(default_factory=list)
    tags: list[ModbusTag] = Field(min_length=1)

    @model_validator(mode="after")
    def _devices_unique(self) -> ModbusSource:
        units = [d.unit_id for d in self.devices]
        if len(units) != len(set(units)):
            raise ValueError("devices: each unit_id may appear once")
        if self.reconnect_delay_max_s < self.reconnect_delay_s:
            raise ValueError("reconnect_delay_max_s must be at least reconnect_delay_s")
        return self

    def unit_of(self, tag: ModbusTag) -> int:
        """The unit id a tag is read from: its own, else the source's."""
        return self.unit_id if tag.unit_id is None else tag.unit_id

    def poll_interval_of(self, unit_id: int) -> float:
        """A device's poll interval: its `devices:` entry, else the source's."""
        for device in self.devices:
            if device.unit_id == unit_id:
                return device.poll_interval_s
        return self.poll_interval_s
