"""Domain errors, each declaring the HTTP problem it becomes (servicekit's installer answers them all)."""

from __future__ import annotations

from servicekit.domain_errors import DomainError


class QueueError(DomainError):
    pass


class JobNotFound(QueueError):
    status, title = 404, "Not found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} does not exist")


class TransitionForbidden(QueueError):
    """The job's current state forbids the operator's action."""

    status, title = 409, "Conflict"
