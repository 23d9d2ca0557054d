"""One error hierarchy and the exit codes of the CLI contract (handbook §5).

Library code raises these; the CLI translates them to a message and an exit code in one place
(`sleuth.cli.main`). Every message says what went wrong and how to fix it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # unreadable source, bad data under --strict
    USAGE = 2  # click's own usage errors
    FAIL_ON = 3  # results at or above --fail-on SEVERITY
    NOT_FOUND = 4  # unknown finding id / entity


class SleuthError(Exception):
    """Base of every error sleuth reports to a user."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


class SourceError(SleuthError):
    """A -s argument names nothing readable."""


class CaseStoreError(SleuthError):
    """A case folder is missing, damaged, or would be overwritten."""


class StrictModeError(SleuthError):
    """--strict was given and a warning was raised."""


class OutputError(SleuthError):
    """The output file cannot be written (exists without --force, bad folder)."""


class UsageError(SleuthError):
    """Flags that parse but make no sense together (e.g. --last with --since)."""

    exit_code = ExitCode.USAGE


class ConfigError(SleuthError):
    """sleuth.toml cannot be read or names an unknown setting."""

    exit_code = ExitCode.USAGE


class NotFoundError(SleuthError):
    """A target (finding id, entity) is not in the data."""

    exit_code = ExitCode.NOT_FOUND


class ThresholdReached(SleuthError):
    """--fail-on: the results reach the given severity (not a failure of sleuth: a signal for runbooks)."""

    exit_code = ExitCode.FAIL_ON
