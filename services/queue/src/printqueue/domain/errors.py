"""Domain errors; the HTTP edge maps them to problem details once."""

from __future__ import annotations


class QueueError(Exception):
    pass


class JobNotFound(QueueError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} does not exist")


class TransitionForbidden(QueueError):
    """The job's current state forbids the operator's action (HTTP 409)."""
