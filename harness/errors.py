"""One exception type per domain. Each message names the thing that failed and what to do about it;
the CLI prints it on one line and exits non-zero."""


class EdgebenchError(Exception):
    """Base class: an error a user can act on (never a bug in edgebench)."""


class ConfigError(EdgebenchError):
    """A bad option, hyperparameter or setting."""


class DatasetError(EdgebenchError):
    """A dataset that does not follow the {root}/{class}/{images} layout, or an unreadable image."""


class TrainingError(EdgebenchError):
    """Training could not produce a model artifact."""


class ArtifactError(EdgebenchError):
    """A model.tar.gz that is missing, hostile, or not laid out as a JumpStart training job writes it."""


class StoreError(EdgebenchError):
    """S3 access failed: credentials, bucket, object, checksum or endpoint."""


class BackendError(EdgebenchError):
    """An inference runtime could not load or run the model."""


class ParityError(EdgebenchError):
    """A candidate backend has no parity verdict against the reference (nothing passes by absence)."""
