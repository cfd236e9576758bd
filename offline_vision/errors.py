"""The few named errors offline_vision raises; the CLI turns each into one line on stderr."""


class OVisionError(Exception):
    """Base class: the message is a complete, one-line explanation for the user."""


class BadInput(OVisionError):
    """An argument, label list or file the user gave cannot be used."""


class BadImage(BadInput):
    """A file that should be an image cannot be decoded."""


class ModelNotFound(OVisionError):
    """A model is not provisioned; the message names the command that provisions it."""


class ModelFileMissing(ModelNotFound):
    """A file an installed model's manifest lists is not on disk."""


class ChecksumMismatch(OVisionError):
    """A file's sha256 differs from the pinned or recorded one."""


class BadModel(OVisionError):
    """A model file is present but cannot be loaded (corrupt or of the wrong kind)."""


class DownloadError(OVisionError):
    """A download failed after retries."""


class ExportError(OVisionError):
    """Converting a checkpoint to ONNX failed or did not validate."""


class DataError(OVisionError):
    """An evaluation dataset is missing or malformed."""


class RunError(OVisionError):
    """A run directory cannot be used as asked: another configuration, a missing config, a
    damaged record, another process writing it, or nothing to evaluate."""


class ReasonerError(OVisionError):
    """A reasoner could not produce a valid answer."""
