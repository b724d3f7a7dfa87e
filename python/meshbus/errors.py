"""Exceptions of meshbus: every failure of the library is one of these.

``Error`` is the base. Bad arguments (a subject with a space, a body that
is too big, a name that is not a str) are ``ValueError`` / ``TypeError``,
as Python users expect, not ``Error``.
"""
from ._meshbus import ffi, lib


class Error(Exception):
    """A meshbus operation failed. ``code`` is the library's error code."""

    code = 0

    def __init__(self, message: str = "", code: int = 0):
        super().__init__(message)
        self.code = code or type(self).code


class NoResponders(Error):
    """Nobody offers the service (or the queue) that was asked for."""

    code = lib.MESH_ENORESPONDERS


class Timeout(Error, TimeoutError):
    """The deadline passed (retries included)."""

    code = lib.MESH_ETIMEDOUT


class RemoteError(Error):
    """The remote handler failed; ``str(exc)`` and ``.text`` are its text."""

    code = lib.MESH_EREMOTE

    @property
    def text(self) -> str:
        return str(self)


class ProviderLeft(Error):
    """The provider of a call left during it and no retry remained (the
    handler may have run)."""

    code = lib.MESH_EPROVIDERLEFT


class Closed(Error):
    """The node is closed or closing."""

    code = lib.MESH_ECLOSED


class Full(Error):
    """A bounded store is full (jobs held by a producer, a link at its
    high-water mark): retry later."""

    code = lib.MESH_EFULL


class NoPeer(Error):
    """No such peer, or it is gone."""

    code = lib.MESH_ENOPEER


class Reject(Exception):
    """Raise from a work handler: the job failed for good (no retry)."""


_BY_CODE = {cls.code: cls for cls in (NoResponders, Timeout, RemoteError, ProviderLeft,
                                      Closed, Full, NoPeer)}
_BY_CODE[lib.MESH_EAGAIN] = Full


def error_for(code: int, text: str) -> BaseException:
    """The exception for a library error code and its text."""
    if code in (lib.MESH_EINVAL, lib.MESH_ETOOBIG):
        return ValueError(text)
    cls = _BY_CODE.get(code, Error)
    return cls(text, code)


def last_error() -> BaseException:
    """The exception for the last failure of this thread."""
    return error_for(lib.mesh_errno(), ffi.string(lib.mesh_last_error()).decode(
        "utf-8", "replace"))


def check(rc: int) -> int:
    """Raise the last error when a library action returned -1."""
    if rc < 0:
        raise last_error()
    return rc
