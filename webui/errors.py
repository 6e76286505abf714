"""Errors whose message is meant for the user: what went wrong and what to do."""


class UserFacingError(Exception):
    """An error with a message fit to show a user (no traceback)."""


class ModelLoadError(UserFacingError):
    """A model could not be found or loaded."""


class StorageError(UserFacingError):
    """The data dir or database cannot be used."""


class DiskFullError(StorageError):
    """The disk holding the data dir (or the database server's disk) is full: nothing more can be
    saved until space is freed. What is stored stays readable; writes work again once there is room."""


class CharacterError(UserFacingError):
    """A character file is missing, malformed or unsupported."""
