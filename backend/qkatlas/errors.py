"""The QkatlasError family: every error a user can cause, with a message written for people.

The API turns these into 4xx responses and the CLI into one-line messages, each in one place.
"""

import re

# An absolute path in a message: a "/" that starts a word (not one inside a URL or a hub id
# such as "openai-community/gpt2"), up to a space or a quote or bracket.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])~?/[^\s'\"`()<>,;]+")


def without_paths(message: str) -> str:
    """`message` with every absolute path named by its last part ("…/gpt2"): what the API may tell
    a client of the server's disk. The CLI keeps the paths, the user's own. For messages about
    files only: a URL path ("/api/attention") would be cut as well."""
    return _ABSOLUTE_PATH.sub(lambda m: f"…/{m.group().rstrip('/').rsplit('/', 1)[-1]}", message)


class QkatlasError(Exception):
    """Base class; `status` is the HTTP status the API answers with."""

    status = 400


class NotFound(QkatlasError):
    status = 404


class UnknownModel(NotFound):
    pass


class UnknownCorpus(NotFound):
    pass


class UnknownAtlas(NotFound):
    pass


class ModelUnavailable(QkatlasError):
    """A catalog model whose weights are neither local nor reachable on the hub."""

    status = 503


class InvalidInput(QkatlasError):
    status = 422


class TooLarge(QkatlasError):
    status = 413


class NotReady(QkatlasError):
    """Something that exists but is still being computed (e.g. a projection)."""

    status = 409


class StorageError(QkatlasError):
    """The data dir or an atlas's files cannot be used (not writable, full, damaged)."""

    status = 503


class ClusterError(QkatlasError):
    """The Dask cluster a build was given cannot do its part: unreachable, lost mid-build,
    without workers, or with workers that cannot see the atlas folder."""

    status = 503


class AtlasDamaged(StorageError):
    """A file of one atlas is unreadable or inconsistent: that atlas says so, the others serve.
    The message names the file relative to the atlas, never a server path."""

    @classmethod
    def file(cls, atlas: str, name: str, reason: str) -> "AtlasDamaged":
        """The error for file `name` (relative to the atlas folder) of atlas `atlas`."""
        return cls(f"atlas {atlas!r} is damaged: {name} ({reason}); rebuild it with `qkatlas build`")
