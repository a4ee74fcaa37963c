"""Our STATE messages as primary host (Sparkplug 3.0 §5.x, the 3.0 JSON form): pure.

Birth and will of one connection carry the same timestamp, taken when that CONNECT is sent, so
an edge node can tell a newer session from an older one. Both go retained at QoS 1 to
`spBv1.0/STATE/<host id>`. When our own topic brings `online: false` after we are online (the
retained death of our previous session, or our will seen by ourselves), the birth goes again.
"""

from __future__ import annotations

import json

STATE_QOS = 1


def state_payload(online: bool, timestamp_ms: int) -> bytes:
    return json.dumps({"online": online, "timestamp": timestamp_ms}).encode()


def says_offline(payload: bytes) -> bool:
    """Whether a STATE payload says `online: false` (unreadable ones count as offline: our
    birth is what should be there)."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return True
    return not (isinstance(doc, dict) and doc.get("online") is True)
