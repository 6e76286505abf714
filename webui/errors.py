"""Errors whose message is meant for the user: what went wrong and what to do."""


class UserFacingError(Exception):
    """An error with a message fit to show a user (no traceback)."""


class ModelLoadError(UserFacingError):
    """A model could not be found or loaded."""


class StorageError(UserFacingError):
    """The data dir or database cannot be used."""


class CharacterError(UserFacingError):
    """A character file is missing, malformed or unsupported."""
