"""The harness's error hierarchy: user errors carry a one-line message and a field path."""

from __future__ import annotations

__all__ = [
    "BackendError",
    "HarnessError",
    "HarnessWarning",
    "JudgeError",
    "SpecError",
    "StoreError",
    "TrackingError",
]


class HarnessError(Exception):
    """Base of every error the harness raises on purpose; the CLI prints it as one line."""

    exit_code = 1


class SpecError(HarnessError):
    """A spec is invalid: names the field path, the bad value and what would be valid."""

    exit_code = 2

    def __init__(self, message: str, field: str | None = None, where: str | None = None) -> None:
        self.field = field
        self.where = where  # the spec's file:line where the field was set, when known
        self.message = message
        text = f"{field}: {message}" if field else message
        super().__init__(f"{where}: {text}" if where else text)

    def at(self, where: str) -> SpecError:
        """The same error, located at ``where`` (``file:line``)."""
        return SpecError(self.message, self.field, where)


class BackendError(HarnessError):
    """A model or SAE could not be loaded, or does not fit the spec."""

    exit_code = 2


class JudgeError(HarnessError):
    """The judge cannot run at all (misconfiguration), as opposed to one failed judgement."""


class StoreError(HarnessError):
    """The run store is missing, corrupt, or does not match the request."""

    exit_code = 2


class TrackingError(HarnessError):
    """The MLflow tracking store cannot be reached where a command needs it (``harness log``,
    ``run --require-tracking``); a run without that flag only warns."""

    exit_code = 2


class HarnessWarning(UserWarning):
    """Something the user should know that does not stop the run (the CLI prints one line)."""
