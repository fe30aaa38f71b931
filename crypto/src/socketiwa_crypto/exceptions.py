"""The exception types of ``cryptography.exceptions``."""


class UnsupportedAlgorithm(Exception):
    pass


class AlreadyFinalized(Exception):
    pass


class InvalidTag(Exception):
    pass


class InvalidSignature(Exception):
    pass


class InvalidKey(Exception):
    pass
