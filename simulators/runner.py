"""Runs the model against the wall clock and feeds the truth file and every front end.

`Simulators` works inside a running event loop (`async with run_simulators(cfg) as sims:`);
`SimulatorThread` runs the same in a background thread for synchronous callers. The loop wakes at
the next model event (at most every `MAX_TICK_S`), takes every event due by now, writes them to
the truth file, then hands them to each front end in order, each stamped ts = epoch + t / speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from config.model import ShopfloorConfig
from config.simulation import SimulationConfig
from config.sources import ModbusSource, MqttSource, OpcUaSource, SparkplugSource
from simulators.frontends import FrontEnd, TimedEvent
from simulators.frontends.modbus import ModbusFrontEnd
from simulators.frontends.mqtt import MqttFrontEnd
from simulators.frontends.opcua import OpcUaFrontEnd
from simulators.frontends.sparkplug import SparkplugFrontEnd
from simulators.model import Clock, LineModel
from simulators.recorder import TruthRecorder, header

log = logging.getLogger(__name__)

MAX_TICK_S = 0.2  # wall seconds between wake-ups when no event is due
MIN_TICK_S = 0.005  # batch events closer than this into one wake-up


def with_ports(cfg: ShopfloorConfig, ports: Mapping[str, int]) -> ShopfloorConfig:
    """A copy of `cfg` whose sources named in `ports` use those ports (OPC UA: in the URL)."""
    unknown = set(ports) - {s.name for s in cfg.sources}
    if unknown:
        raise KeyError(f"no source named {sorted(unknown)}")
    sources = []
    for source in cfg.sources:
        port = ports.get(source.name)
        if port is None:
            sources.append(source)
        elif isinstance(source, OpcUaSource):
            parts = urlsplit(source.endpoint)
            netloc = f"{parts.hostname}:{port}"
            sources.append(
                source.model_copy(update={"endpoint": urlunsplit(parts._replace(netloc=netloc))})
            )
        else:
            sources.append(source.model_copy(update={"port": port}))
    return cfg.model_copy(update={"sources": sources})


def with_simulation(cfg: ShopfloorConfig, **changes: object) -> ShopfloorConfig:
    """A copy of `cfg` with `simulation` fields replaced (validated), for tests and the demo."""
    sim = cfg.simulation or SimulationConfig()
    merged = SimulationConfig.model_validate({**sim.model_dump(), **changes})
    return cfg.model_copy(update={"simulation": merged})


class Simulators:
    """Every simulator a config describes, sharing one model and one truth file."""

    def __init__(
        self,
        cfg: ShopfloorConfig,
        *,
        speed: float | None = None,
        seed: int | None = None,
        truth_path: str | Path | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.sim = cfg.simulation or SimulationConfig()
        self.speed = speed if speed is not None else self.sim.speed
        self.seed = seed if seed is not None else self.sim.seed
        if not self.speed > 0:
            raise ValueError(f"speed must be above 0, not {self.speed}")
        self.truth_path = Path(truth_path) if truth_path else None
        self.frontends: list[FrontEnd] = []
        for source in cfg.sources:
            if isinstance(source, OpcUaSource):
                self.frontends.append(OpcUaFrontEnd(source, self.sim, workdir))
            elif isinstance(source, ModbusSource):
                self.frontends.append(ModbusFrontEnd(source, self.sim))
            elif isinstance(source, MqttSource):
                self.frontends.append(MqttFrontEnd(source, self.sim))
            elif isinstance(source, SparkplugSource):
                self.frontends.append(SparkplugFrontEnd(source, self.sim))
        self.clock: Clock | None = None
        self.model: LineModel | None = None
        self.start_seconds: float | None = None
        self.events = 0
        self._truth: TruthRecorder | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._stepping = asyncio.Lock()
        self._started: list[FrontEnd] = []
        self._mono0 = 0.0

    def frontend(self, source_name: str) -> FrontEnd:
        return next(f for f in self.frontends if f.name == source_name)

    async def start(self) -> None:
        """Build the model at epoch = now, prime every front end with second 0, then listen.

        Priming first means no client ever reads a value the truth file does not hold; events
        that fall due while the servers start are published by the first step, with their own
        (slightly past) timestamps.
        """
        began = time.perf_counter()
        loop = asyncio.get_running_loop()
        self._mono0 = loop.time()
        self.clock = Clock(dt.datetime.now(dt.UTC), self.speed)
        self.model = LineModel(self.cfg, self.clock, self.sim, seed=self.seed)
        if self.truth_path is not None:
            self._truth = TruthRecorder(
                self.truth_path, header(self.cfg, self.sim, self.clock, self.seed)
            )
        first = self._batch(0.0)
        for fe in self.frontends:
            fe.prime(first)
        # Concurrently: asyncua loads its standard address space in a thread (about a second,
        # most of the start time) while the Modbus server binds and the MQTT client connects.
        results = await asyncio.gather(
            *(fe.start() for fe in self.frontends), return_exceptions=True
        )
        self._started = [
            fe
            for fe, r in zip(self.frontends, results, strict=True)
            if not isinstance(r, BaseException)
        ]
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self._stop_frontends()
            if self._truth is not None:
                self._truth.close(0.0, self.clock.epoch)
            raise errors[0]
        for fe in self._started:
            log.debug("%s: %s", fe.name, fe.describe())  # `demo` and `simulate` print these
            if isinstance(fe, SparkplugFrontEnd):  # births exact at their time, in the truth
                fe.attach(self._catch_up, self._truth.note if self._truth else None)
        self._task = asyncio.create_task(self._run(), name="shopfloor-simulators")
        self.start_seconds = time.perf_counter() - began
        log.info(
            "simulators started in %.2f s (speed %g, seed %d, epoch %s)",
            self.start_seconds,
            self.speed,
            self.seed,
            self.clock.epoch.isoformat(),
        )

    def _batch(self, until: float) -> list[TimedEvent]:
        assert self.model is not None and self.clock is not None
        batch = [(e, self.clock.wall(e.t)) for e in self.model.advance(until)]
        self.events += len(batch)
        if batch and self._truth is not None:
            self._truth.write(batch)
        return batch

    def _now(self) -> float:
        return (asyncio.get_running_loop().time() - self._mono0) * self.speed

    async def _step(self, until: float) -> None:
        async with self._stepping:  # batches reach each front end in order
            batch = self._batch(until)
            if batch:
                for fe in self._started:
                    await fe.publish(batch)

    async def _catch_up(self) -> dt.datetime:
        """Publish what is due now; the wall time every front end's image is exact at."""
        assert self.clock is not None
        until = self._now()
        await self._step(until)
        return self.clock.wall(until)

    async def _run(self) -> None:
        assert self.model is not None
        try:
            while not self._stop.is_set():
                await self._step(self._now())
                due = self.model.next_time()
                wait = MAX_TICK_S if due is None else (due - self._now()) / self.speed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stop.wait(), min(MAX_TICK_S, max(MIN_TICK_S, wait))
                    )
        except Exception:
            # Servers still up would serve frozen values: make it loud; stop() re-raises.
            log.exception("the simulation loop failed; values are no longer updated")
            raise

    async def wait(self) -> None:
        """Return when the simulation loop ends (only by `stop()` or a failure)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Publish what is due, end the truth at this instant, stop every server, then close the
        truth file: what a server records as it stops (a Sparkplug NDEATH) is in it."""
        for fe in self._started:
            if isinstance(fe, MqttFrontEnd):
                fe.closing = True
        self._stop.set()
        if self._task is None:
            await self._stop_frontends()
            return
        ended: tuple[float, dt.datetime] | None = None
        try:
            await self._task
        finally:
            self._task = None
            try:
                if self.model is not None and self.clock is not None:
                    end = self._now()
                    await self._step(end)
                    ended = (end, self.clock.wall(end))
            finally:
                await self._stop_frontends()
                if self._truth is not None and ended is not None:
                    self._truth.close(*ended)

    async def _stop_frontends(self) -> None:
        while self._started:
            fe = self._started.pop()
            try:
                await fe.stop()
            except Exception:
                log.exception("%s: error while stopping", fe.name)

    def describe(self) -> list[str]:
        return [f"{fe.name}: {fe.describe()}" for fe in self.frontends]


@contextlib.asynccontextmanager
async def run_simulators(
    cfg: ShopfloorConfig,
    *,
    speed: float | None = None,
    seed: int | None = None,
    truth_path: str | Path | None = None,
    ports: Mapping[str, int] | None = None,
    workdir: Path | None = None,
) -> AsyncIterator[Simulators]:
    """Start every simulator of `cfg` in the running loop; stop them when the block ends."""
    if ports:
        cfg = with_ports(cfg, ports)
    sims = Simulators(cfg, speed=speed, seed=seed, truth_path=truth_path, workdir=workdir)
    await sims.start()
    try:
        yield sims
    finally:
        await sims.stop()


class SimulatorThread:
    """The simulators in a background thread with its own event loop, for synchronous code."""

    def __init__(self, cfg: ShopfloorConfig, **kwargs: object) -> None:
        self._cfg, self._kwargs = cfg, kwargs
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._done: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.sims: Simulators | None = None

    def start(self, timeout: float = 30.0) -> Simulators:
        self._thread = threading.Thread(target=self._main, name="shopfloor-simulators", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("simulators did not start")
        if self._error is not None:
            raise self._error
        assert self.sims is not None
        return self.sims

    def _main(self) -> None:
        asyncio.run(self._amain())

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = done = asyncio.Event()
        try:
            async with run_simulators(self._cfg, **self._kwargs) as sims:  # type: ignore[arg-type]
                self.sims = sims
                self._ready.set()
                await done.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def stop(self, timeout: float = 30.0) -> None:
        thread = self._thread
        if self._loop is not None and self._done is not None and thread and thread.is_alive():
            self._loop.call_soon_threadsafe(self._done.set)
            thread.join(timeout)
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Simulators:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
