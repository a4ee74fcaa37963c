"""Structured logging: one logfmt line per event, quiet by default.

Quiet means: by default shopfloor's own loggers speak from INFO, and they log at INFO only what
changes the picture (a source gone at WARNING, back at INFO, a start, a stop), never per poll,
message or retry. The libraries' loggers (asyncua, pymodbus, psycopg, asyncio...) say the same
things in their own words, with tracebacks, once per retry: they are silent by default, their
warnings come with -v, everything with -vv. (uvicorn keeps its own handler for its errors; the
API logs its access and info lines nowhere.) docs/collector.md, "Logs".
"""

from __future__ import annotations

import logging
import sys
import time
from typing import NamedTuple, TextIO

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

# shopfloor's top-level packages (pyproject's packages.find), its CLI's own loggers and a script
# run with `python -m`: every other logger is a library's.
OWN = frozenset(
    {"adapters", "api", "collector", "config", "kpi", "localenv", "simulators", "storage"}
    | {"shopfloor", "__main__"}
)
# Libraries that log a lot below WARNING: their level is set too, so that what would be
# filtered out is not even made into a record (asyncua logs every publish at INFO).
CHATTY = ("asyncua", "pymodbus", "psycopg")


class Levels(NamedTuple):
    """The least level shown of shopfloor's own loggers and of every other logger."""

    own: int
    libraries: int


# by the number of -v given: 0 (default), 1 and 2 or more
VERBOSITY = (
    Levels(logging.INFO, logging.CRITICAL),
    Levels(logging.DEBUG, logging.WARNING),
    Levels(logging.DEBUG, logging.DEBUG),
)


def is_own(logger_name: str) -> bool:
    return logger_name.partition(".")[0] in OWN


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    """`ts=… level=… logger=… msg="…" key=value…`; extra= fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        parts += [f"{k}={_quote(v)}" for k, v in vars(record).items() if k not in _RESERVED]
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


class LevelsFilter(logging.Filter):
    """Lets through a record of shopfloor's own loggers from `own`, of any other from
    `libraries`: the handler's rule, whatever level a library gave its loggers itself."""

    def __init__(self, levels: Levels) -> None:
        super().__init__()
        self.levels = levels

    def filter(self, record: logging.LogRecord) -> bool:
        least = self.levels.own if is_own(record.name) else self.levels.libraries
        return record.levelno >= least


def levels_for(verbosity: int) -> Levels:
    return VERBOSITY[min(max(verbosity, 0), len(VERBOSITY) - 1)]


def log_handler(verbosity: int, stream: TextIO) -> logging.Handler:
    """The handler `setup_logging` installs: logfmt to `stream`, the levels of `verbosity`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    handler.addFilter(LevelsFilter(levels_for(verbosity)))
    return handler


def set_levels(verbosity: int) -> None:
    """The loggers' levels for `verbosity`: below them no record is made (the chatty libraries'
    included); the handler's filter holds back what is left of the other libraries'."""
    levels = levels_for(verbosity)
    logging.getLogger().setLevel(min(levels))
    for name in OWN:
        logging.getLogger(name).setLevel(logging.NOTSET)  # the root's level
    for name in CHATTY:
        logging.getLogger(name).setLevel(levels.libraries)


def setup_logging(verbosity: int = 0) -> None:
    """The process's logging: one logfmt handler on the root logger, to stderr. 0 is the
    default; 1 (-v) adds shopfloor's debug lines and the libraries' warnings; 2 (-vv)
    everything."""
    logging.getLogger().handlers[:] = [log_handler(verbosity, sys.stderr)]
    set_levels(verbosity)
