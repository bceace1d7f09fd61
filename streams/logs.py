"""Logs of every Murmur process: one JSON object a line, or readable lines
on a terminal, through one handler on the stdlib root logger.

Faust, aiokafka, uvicorn and the Cassandra driver log through stdlib
``logging``; Murmur's own modules do too (``logging.getLogger(__name__)``,
fields in ``extra``), and structlog's loggers may be used once this is
configured. Both end in structlog's
``ProcessorFormatter``, so every line has ``timestamp``, ``level``,
``logger`` and ``event``, plus what is bound to the context where it was
logged: ``processor`` for a batch (streams/runtime.py), ``sim`` and
``agent`` while one agent's events are processed (processors/agent.py),
``request_id`` in the API (api/request_log.py).

:func:`configure` is called once a process by the ``murmur`` command (the
CLI, the API, sinks) and again by the worker with its ``--loglevel``; it
replaces only the handler it installed itself.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, unbind_contextvars

__all__ = ["bind_contextvars", "bound_contextvars", "configure", "configure_from", "unbind_contextvars"]

LogFormat = Literal["auto", "json", "console"]
# Murmur's own packages: their level is MURMUR_LOG_LEVEL; every other
# library's is the root level (warning unless the worker's --loglevel says).
OWN = ("streams", "processors", "sinks", "api", "connectors", "deploy", "eval", "bench")


class _Stderr(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when a line
    is logged (a test runner or CliRunner swaps it, and a handler holding the
    old stream would write to a closed file)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        self._fixed = value


def _shared() -> list:
    """What every line gets, structlog's or stdlib's."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _foreign() -> list:
    # A stdlib line's fields: ``log.info("request", extra={"status": 200})``.
    return [*_shared(), structlog.stdlib.ExtraAdder()]


def wants_json(fmt: LogFormat, stream: TextIO) -> bool:
    """``auto``: readable lines for a person at a terminal, JSON for a file,
    a pipe or a container's log (what a collector reads)."""
    if fmt != "auto":
        return fmt == "json"
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def formatter(json_lines: bool) -> structlog.stdlib.ProcessorFormatter:
    renderer = (structlog.processors.JSONRenderer(default=str) if json_lines
                else structlog.dev.ConsoleRenderer(colors=False))
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_foreign(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # A traceback is one field of the JSON object, not lines of its own.
            *([structlog.processors.format_exc_info] if json_lines else []),
            renderer,
        ],
    )


def configure(*, fmt: LogFormat = "auto", level: str = "info", others: str | int = "warning",
              stream: TextIO | None = None) -> logging.Handler:
    """Route every logger through one handler on the root logger.
    ``level``: Murmur's own loggers; ``others``: the root (every library).
    Returns the handler (tests read what it wrote)."""
    own, libraries = _level(level), _level(others)  # a bad level fails before anything changes
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "murmur", False):
            root.removeHandler(h)
    handler = _Stderr(stream)
    handler.murmur = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter(wants_json(fmt, stream or sys.stderr)))
    root.addHandler(handler)
    logging.captureWarnings(True)  # a library's warning is a JSON line too, not raw stderr
    root.setLevel(libraries)
    for name in OWN:
        logging.getLogger(name).setLevel(own)
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *_shared(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return handler


def configure_from(settings: Any, *, others: str | int = "warning") -> logging.Handler:
    return configure(fmt=settings.log_format, level=settings.log_level, others=others)


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r} (debug, info, warning, error)")
    return number
