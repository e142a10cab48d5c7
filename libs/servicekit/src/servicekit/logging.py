"""One log format for every process, with secrets scrubbed before anything is written."""

from __future__ import annotations

import logging
import re
import sys

_SECRET = re.compile(r"(?i)(access_code|password|secret|token|authorization)(['\"]?\s*[:=]\s*['\"]?)([^'\",\s}]+)")


class RedactSecrets(logging.Filter):
    """Printer access codes and credentials must never reach a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = _SECRET.sub(r"\1\2***", message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("faststream", "nats", "sqlalchemy.engine", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
