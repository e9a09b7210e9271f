"""How every `retail` command reports an error the user can fix: `error: <cause>; <fix>`, exit status 1.

Each stage's Typer app names the exceptions that carry such messages; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import typer

F = TypeVar("F", bound=Callable[..., object])


def fails_cleanly(*user_errors: type[BaseException]) -> Callable[[F], F]:
    """Decorate a command so `user_errors` print as `error:` lines on stderr and exit with status 1."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: object, **kwargs: object) -> object:
            try:
                return command(*args, **kwargs)
            except user_errors as error:
                for line in str(error).splitlines() or [type(error).__name__]:
                    typer.echo(f"error: {line}", err=True)
                raise typer.Exit(1) from None

        return wrapper  # type: ignore[return-value]

    return decorate
