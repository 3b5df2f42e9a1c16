from workloads.io import InputError


class CheckpointError(InputError):
    """A checkpoint cannot be used: the message names the file and the tensor or field."""
