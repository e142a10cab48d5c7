"""The one error the launcher raises for anything that stops the stack from coming up."""


class StackError(RuntimeError):
    """A component of the dev stack failed to start, died, or was misconfigured."""
