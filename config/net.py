"""Host names and addresses as the security warnings see them."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for this machine (localhost, 127.0.0.0/8, ::1): its traffic crosses no network."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
