"""The errors relaykit reports to people, each mapped to a CLI exit status."""

from __future__ import annotations


class RelaykitError(Exception):
    """Bad input or configuration: the command exits 1 with this message."""

    exit_status = 1

    def __init__(self, message: str, origin: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.origin = origin  # an Origin (file:line) or a name such as "RELAY_PORT"

    def __str__(self) -> str:
        return f"{self.origin}: {self.message}" if self.origin else self.message


class ConfigError(RelaykitError):
    """A config file, environment variable or secret file is invalid."""


class UsageError(RelaykitError):
    """Wrong arguments to a known command (exit 1, like DMS)."""


class UnknownCommand(RelaykitError):
    """A command or subcommand that does not exist (exit 2)."""

    exit_status = 2


class ConfigErrors(ConfigError):
    """Several problems found at once (`setup relay check` reports them all)."""

    def __init__(self, errors: list[RelaykitError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors

    def __str__(self) -> str:
        return self.message
