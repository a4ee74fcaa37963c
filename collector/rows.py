"""The collector's row: a reading mapped to its tag, before the database assigns tag ids."""

from __future__ import annotations

import datetime as dt

# (time, tag key `machine.name`, value, quality, text): the spool stores exactly this.
Row = tuple[dt.datetime, str, float | None, int, str | None]
