"""One log format for every process, with secrets scrubbed before anything is written.

In production every line is one JSON object (time, level, logger, message, service, instance and, inside a
message's handling or a traced request, `correlationid` and `trace_id`), so a log store can join lines to
traces and to one order's messages. `LOG_FORMAT=text` gives the human format `make run` shows.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_SECRET = re.compile(r"(?i)(access_code|password|secret|token|authorization)(['\"]?\s*[:=]\s*['\"]?)([^'\",\s}]+)")

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
"""The correlation id of the message being handled (set by the bus around each handler)."""


class RedactSecrets(logging.Filter):
    """Printer access codes and credentials must never reach a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = _SECRET.sub(r"\1\2***", message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line; the trace and correlation ids of the context the line was logged in."""

    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self.service, self.instance = service, instance

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
            "instance": self.instance,
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = f"{span.trace_id:032x}"
            line["span_id"] = f"{span.span_id:016x}"
        correlation = correlation_id.get()
        if correlation:
            line["correlationid"] = correlation
        if record.exc_info:
            line["exception"] = _SECRET.sub(r"\1\2***", self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(service: str, level: str = "INFO", *, instance: str | None = None, fmt: str = "text") -> None:
    """`fmt` is "json" (production) or "text" (a developer's terminal)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLines(service, instance or service))
    else:
        who = instance or service
        handler.setFormatter(logging.Formatter(f"%(asctime)s {who} %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("faststream", "nats", "sqlalchemy.engine", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
