"""Session settings for connections that run the KPI engine's reads (API pool, bench).

JIT is turned off per session, on our own connections only: the engine's LATERAL queries are
costed over every hypertable chunk, and JIT compilation then takes many times as long as the
query itself; an `ALTER DATABASE` would change other applications' sessions too
(docs/engine.md).
"""

from __future__ import annotations

import psycopg

SESSION_SETTINGS = "SET jit = off"


async def configure(conn: psycopg.AsyncConnection) -> None:
    """Apply the engine's session settings; leaves the connection idle (as psycopg_pool's
    `configure=` callback must)."""
    await conn.execute(SESSION_SETTINGS)
    if not conn.autocommit:
        await conn.commit()
