"""The error every pretrained-weights function raises."""


class CheckpointError(ValueError):
    """A checkpoint or setting cannot be used; the message names problem and fix."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holds pickled objects that a weights-only read refuses.

    Nothing in it was run; ``inert_objects=True`` reads such objects as inert
    placeholders instead.
    """
