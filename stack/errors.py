"""The one exception the stack raises for anything a user can fix: a one-line cause and the fix."""


class StackError(RuntimeError):
    """Printed by the CLI as `error: <message>` with exit status 1, never as a traceback."""
