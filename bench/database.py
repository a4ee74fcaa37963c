"""A benchmark's database: the URL given (--database-url), or a private TimescaleDB cluster in a
temp dir, removed afterwards unless kept (its URL printed for `--database-url URL --reuse`)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

from localenv.cluster import LocalCluster, pg_bin_dir, world_traversable_tempdir
from localenv.mosquitto import free_port


@contextlib.contextmanager
def bench_database(
    url: str | None, name: str, *, keep: bool = False, bulk_load: bool = False
) -> Iterator[str]:
    """`url` as it is, or a private cluster's; `bulk_load` gives it room for loads of millions of
    rows (fewer checkpoints)."""
    if url:
        yield url
        return
    base = world_traversable_tempdir(f"shopfloor-bench-{name}-")
    cluster = LocalCluster(base=base / "db", port=free_port())
    try:
        cluster.init()
        if bulk_load:
            with (cluster.data_dir / "postgresql.conf").open("a") as f:
                f.write("max_wal_size = 8GB\ncheckpoint_timeout = 30min\n")
        cluster.start()
        print(f"private cluster in {base}, URL {cluster.url}", flush=True)
        yield cluster.url
    finally:
        if keep:
            print(
                f"kept: cluster dir {base}, URL {cluster.url}; stop it with "
                f"`{pg_bin_dir() / 'pg_ctl'} stop -D {cluster.data_dir}` (as the postgres user "
                "when root), then remove the dir"
            )
        else:
            cluster.stop(mode="immediate")
            shutil.rmtree(base, ignore_errors=True)
