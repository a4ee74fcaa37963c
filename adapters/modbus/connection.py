"""One Modbus TCP connection (MBAP or RTU framing over TCP): reads, retries, reconnects.

Why a timed-out request closes the connection: a device that answers late still sends its answer,
and the next request on the same socket could take it for its own. pymodbus 3.16 skips a reply
whose MBAP transaction id differs, but RTU framing has no transaction id, and gateways do not all
echo ids faithfully. Closing after a timeout drops the late reply with the socket, so each retry
starts on a fresh connection and a response can only belong to the request just sent.

pymodbus's own retries and automatic reconnect are off (retries=0, reconnect_delay=0): this class
owns both, so the lock, the backoff and the count of what went wrong are in one place.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from adapters.errors import AdapterError, ConfigurationError, TransportError
from adapters.modbus.codec import Response
from adapters.reconnect import Backoff
from config.sources.modbus import ModbusSource, RegisterKind

log = logging.getLogger(__name__)

_FRAMERS = {"tcp": FramerType.SOCKET, "rtu": FramerType.RTU}

# Exception codes of the spec (MODBUS Application Protocol 7): 1-3 mean the request itself is
# wrong for this device (fix the tag map); the others are the device's or gateway's trouble.
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class ModbusExceptionError(AdapterError):
    """The device answered with a Modbus exception response, `exception_code`."""

    def __init__(self, code: int, message: str, *, source: str | None = None) -> None:
        self.exception_code = code
        super().__init__(message, source=source)


class IllegalRequestError(ModbusExceptionError, ConfigurationError):
    """Exception 1, 2 or 3: the tag map asks for what is not there."""


class DeviceBusyError(ModbusExceptionError, TransportError):
    """Exception 4-11 from the device or gateway: it may do better next poll."""


class ConnectError(TransportError):
    """No TCP connection (refused, unreachable, closed by the device, or waiting out the
    reconnect backoff): the source is away, whichever unit was asked."""


class ModbusConnection:
    """A lock-guarded client that reads one request at a time and heals itself."""

    def __init__(self, source: ModbusSource) -> None:
        self.source = source
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | None = None
        self._backoff = Backoff(source.reconnect_delay_s, source.reconnect_delay_max_s)
        self._next_connect = 0.0  # loop time before which no connect is tried
        self._ever_connected = False
        self.connects = 0
        self.timeouts = 0
        self.sent_at = dt.datetime.now(dt.UTC)  # when the last answered request was sent

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def read(self, table: RegisterKind, address: int, count: int, unit_id: int) -> Response:
        """`count` registers or bits from `address`; raises TransportError or an exception error.

        Tries `retries + 1` times; a timeout or a lost connection closes the socket first. A
        ConnectError when the device closed the connection (the source is away, not one unit).
        """
        async with self._lock:
            last: Exception | None = None
            lost = False  # the last attempt failed because the device closed the connection
            for _attempt in range(self.source.retries + 1):
                client = await self._connected_client()
                self.sent_at = dt.datetime.now(dt.UTC)
                try:
                    async with asyncio.timeout(self.source.timeout_s):  # no task per request
                        response = await self._call(client, table, address, count, unit_id)
                except asyncio.CancelledError:
                    self._drop("cancelled with a request outstanding")
                    raise
                except TimeoutError as exc:
                    self.timeouts += 1
                    last, lost = exc, not client.connected
                    self._drop(f"no response within {self.source.timeout_s}s")
                    continue
                except Exception as exc:  # ModbusException, OSError, a frame pymodbus chokes on
                    last, lost = exc, not client.connected
                    self._drop(f"request failed: {exc!r}")
                    continue
                self._backoff.reset()  # the device answered
                if isinstance(response, ExceptionResponse) or response.isError():
                    raise self._exception_error(response, table, address, count, unit_id)
                if table.is_bit:
                    return list(response.bits[:count])
                if len(response.registers) != count:
                    lost = False
                    self._drop("short response")
                    last = TransportError(f"asked {count} registers, got {len(response.registers)}")
                    continue
                return list(response.registers)
            if lost:
                raise ConnectError(
                    f"{self.source.host}:{self.source.port} closed the connection",
                    source=self.source.name,
                ) from last
            what = "no response" if isinstance(last, TimeoutError) else str(last)
            raise TransportError(
                f"unit {unit_id} {table.value} {address}+{count}: {what} after "
                f"{self.source.retries + 1} attempt(s)",
                source=self.source.name,
            ) from last

    async def close(self) -> None:
        async with self._lock:
            self._drop("closed")

    async def _connected_client(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop(None)
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_connect:
            raise ConnectError(
                f"not connected; next connect in {self._next_connect - loop.time():.1f}s",
                source=self.source.name,
            )
        client = AsyncModbusTcpClient(
            self.source.host,
            port=self.source.port,
            framer=_FRAMERS[self.source.framer],
            name=f"shopfloor-{self.source.name}",
            timeout=self.source.timeout_s + 1.0,  # a backstop: our own timeout decides
            retries=0,
            reconnect_delay=0,
        )
        try:
            ok = await asyncio.wait_for(client.connect(), timeout=self.source.timeout_s)
        except (TimeoutError, OSError, ModbusException):
            ok = False
        except asyncio.CancelledError:
            client.close()
            raise
        if not ok:
            client.close()
            self._next_connect = loop.time() + self._backoff.next()
            raise ConnectError(
                f"cannot connect to {self.source.host}:{self.source.port}",
                source=self.source.name,
            )
        self._client = client
        self.connects += 1
        if self._ever_connected:
            log.debug(
                "%s: reconnected to %s:%s", self.source.name, self.source.host, self.source.port
            )
        self._ever_connected = True
        return client

    def _drop(self, why: str | None) -> None:
        """Close the socket so no late reply can reach a later request."""
        if self._client is None:
            return
        if why:
            log.debug("%s: closing connection: %s", self.source.name, why)
        self._client.close()
        self._client = None

    @staticmethod
    async def _call(
        client: AsyncModbusTcpClient, table: RegisterKind, address: int, count: int, unit: int
    ) -> ModbusPDU:
        match table:
            case RegisterKind.HOLDING_REGISTER:
                return await client.read_holding_registers(address, count=count, device_id=unit)
            case RegisterKind.INPUT_REGISTER:
                return await client.read_input_registers(address, count=count, device_id=unit)
            case RegisterKind.COIL:
                return await client.read_coils(address, count=count, device_id=unit)
            case RegisterKind.DISCRETE_INPUT:
                return await client.read_discrete_inputs(address, count=count, device_id=unit)
        raise ValueError(f"not a readable table: {table}")

    def _exception_error(
        self, response: ModbusPDU, table: RegisterKind, address: int, count: int, unit: int
    ) -> ModbusExceptionError:
        code = int(getattr(response, "exception_code", 0))
        text = (
            f"unit {unit} {table.value} {address}+{count}: exception {code} "
            f"({EXCEPTION_NAMES.get(code, 'unknown')})"
        )
        if code in (1, 2, 3):
            return IllegalRequestError(code, text, source=self.source.name)
        return DeviceBusyError(code, text, source=self.source.name)
