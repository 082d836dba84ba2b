"""The errors every pretrained-weights function raises."""

from typing import Collection


class CheckpointError(ValueError):
    """A checkpoint or setting cannot be used; the message names problem and fix."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds pickled objects that a weights-only read refuses.

    Nothing in it was run; ``inert_objects=True`` reads such objects as inert
    placeholders instead.
    """


def check_choice(what: str, name: str, choices: Collection[str]) -> None:
    """Raise :class:`CheckpointError` naming the choices if ``name`` is not one.

    Args:
        what (str): What ``name`` names, e.g. ``"checkpoint format"``.
        name (str): The value given.
        choices (Collection[str]): The accepted values.

    """
    if name not in choices:
        raise CheckpointError(
            f"unknown {what} {name!r}; choose one of {sorted(choices)}"
        )
