"""How the collector's connections notice a database link that died without closing.

A WAN (or a firewall) that drops packets closes nothing: without these options a write waits
for the kernel's retransmissions, about 15 minutes, while the collector's health says all is
well. With them libpq gives up on a connect after 5 s, on an idle connection after 10 s plus
3 unanswered keepalives 5 s apart, and on data the server has not acknowledged after 30 s.
The collector's own write timeout covers what none of these sees (docs/scale.md).
"""

from __future__ import annotations

from typing import Any

LINK_OPTIONS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms
}
