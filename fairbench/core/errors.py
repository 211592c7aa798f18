"""Errors a user can fix from the command line.

Anything raised as a :class:`FairbenchError` is printed by the CLI as one line and ends the process
with exit code 2; every other exception is a bug and keeps its traceback.
"""


class FairbenchError(Exception):
    """Bad input: an unknown name, a malformed override, an impossible setting."""


class DataNotFoundError(FairbenchError):
    """A dataset's files are missing; the message says where they go and where to get them."""


def unknown_choice(kind: str, name: object, choices) -> FairbenchError:
    """The one wording used for every unknown name, so messages always list the valid choices."""
    listed = ", ".join(sorted(str(c) for c in choices))
    return FairbenchError(f"unknown {kind} '{name}'; choose from: {listed}")


class DistillationDiverged(Exception):
    """A distillation's loss became NaN or infinite: that cell fails, the suite goes on.

    Not a :class:`FairbenchError`: the input was valid, the optimisation was not.
    """


def first_line(error: BaseException) -> str:
    """An exception's message cut to one line, for a one-line error that quotes what went wrong."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def os_reason(error: OSError) -> str:
    """What the OS said, in the lower case of a clause inside a one-line error ("permission denied")."""
    return (error.strerror or str(error)).lower()
