"""The MQTT transport with a Sparkplug host's extras: our STATE birth and will, and publishing.

The MQTT source's transport (paho in its own thread, bounded hand-over) does the rest; the
source's clean session, session expiry and QoS are fixed by SparkplugSource. As primary host,
each CONNECT carries a will `{"online": false, "timestamp": T}` with a fresh T (set in paho's
`on_pre_connect`), and the birth `{"online": true, "timestamp": T}` with the same T goes once
the broker has granted our subscriptions, so our STATE is never older than our view of the
topics. `lost` is set when the broker connection drops (not by us), `lost_at` says when.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any, cast

import paho.mqtt.client as mqtt

from adapters.base import SourceStatus
from adapters.mqtt.transport import MqttTransport
from adapters.sparkplug.host import STATE_QOS, state_payload
from adapters.sparkplug.topics import state_topic, subscription_filters
from config.sources.mqtt import MqttSource
from config.sources.sparkplug import SparkplugSource

log = logging.getLogger(__name__)

DEATH_WAIT_S = 2.0  # how long a clean stop waits for the broker to take our STATE death


class SparkplugTransport(MqttTransport):
    def __init__(self, source: SparkplugSource, status: SourceStatus, queue_size: int) -> None:
        filters = subscription_filters(source.groups)
        self.state_topic = state_topic(source.host_id)
        if source.primary_host:
            filters.append(self.state_topic)
        # SparkplugSource has every field the transport reads (its session ones fixed).
        super().__init__(cast(MqttSource, source), filters, status, queue_size)
        self.primary = source.primary_host
        self.lost_at = dt.datetime.now(dt.UTC)  # when the connection last dropped
        self.lost = asyncio.Event()  # set (in the loop) when it drops, not by us
        self._birth_ms = 0  # T of this connection's will and birth

    def _make_client(self) -> mqtt.Client:
        client = super()._make_client()
        if self.primary:
            client.on_pre_connect = self._on_pre_connect
        return client

    def _on_pre_connect(self, client: mqtt.Client, _userdata: Any) -> None:
        self._birth_ms = time.time_ns() // 1_000_000
        will = state_payload(False, self._birth_ms)
        client.will_set(self.state_topic, will, qos=STATE_QOS, retain=True)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        was = self.status.connected
        super()._on_subscribe(client, userdata, mid, reasons, properties)
        if self.status.connected and not was:
            self.publish_birth(client)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        lost = self.status.connected and not self._closing.is_set()
        super()._on_disconnect(client, userdata, flags, reason, properties)
        loop = self._loop
        if lost and loop is not None and not loop.is_closed():
            self.lost_at = dt.datetime.now(dt.UTC)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.lost.set)

    def publish_birth(self, client: mqtt.Client | None = None) -> None:
        """Our STATE birth for this connection (again, when our topic said offline)."""
        client = client or self._client
        if client is not None and self.primary:
            payload = state_payload(True, self._birth_ms)
            client.publish(self.state_topic, payload, qos=STATE_QOS, retain=True)

    def publish(self, topic: str, payload: bytes) -> bool:
        """A QoS 0 message (a command); False when paho would not take it (not connected)."""
        client = self._client
        if client is None:
            return False
        return client.publish(topic, payload, qos=0).rc == mqtt.MQTT_ERR_SUCCESS

    async def disconnect(self) -> None:
        """As primary host, say we are offline before a clean disconnect (the will is not sent
        then), waiting a little for the broker to take it."""
        client = self._client
        if self.primary and client is not None and self.status.connected:
            now = time.time_ns() // 1_000_000
            info = client.publish(
                self.state_topic, state_payload(False, now), qos=STATE_QOS, retain=True
            )
            try:
                await asyncio.to_thread(info.wait_for_publish, DEATH_WAIT_S)
            except (RuntimeError, ValueError) as exc:
                log.info("%s: STATE death not confirmed: %s", self.source.name, exc)
        await super().disconnect()
