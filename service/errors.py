"""songqueue's exceptions. Each docstring is its default message; the API maps each to a status."""

from __future__ import annotations


class SongqueueError(Exception):
    """Something went wrong in songqueue."""

    status_code = 500

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def detail(self) -> str:
        return str(self)


class BadRequest(SongqueueError):
    """The request is invalid."""

    status_code = 400


class Unauthorized(SongqueueError):
    """Missing or invalid API key."""

    status_code = 401


class Forbidden(SongqueueError):
    """Access denied: path outside allowed directory."""

    status_code = 403


class NotFound(SongqueueError):
    """Not found."""

    status_code = 404


class JobNotFound(NotFound):
    """Job not found"""


class PayloadTooLarge(SongqueueError):
    """Request body too large."""

    status_code = 413


class UnsupportedMediaType(SongqueueError):
    """Unsupported Content-Type."""

    status_code = 415


class QueueFull(SongqueueError):
    """Server busy: queue is full"""

    status_code = 429


class LeaseLost(SongqueueError):
    """The job's lease was lost: another worker owns it now, or it was finished elsewhere."""

    status_code = 409


class JobCancelled(Exception):
    """The job was cancelled while it ran."""


class WorkerStopping(Exception):
    """The worker is shutting down; the job goes back to the queue."""
