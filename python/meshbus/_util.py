"""Conversions at the edge of the C API."""
from typing import Optional

from ._meshbus import ffi


def enc(value, what: str) -> bytes:
    """A str argument as UTF-8 bytes for the library (TypeError otherwise)."""
    if isinstance(value, str):
        b = value.encode("utf-8")
        if b"\0" in b:
            raise ValueError("%s contains a NUL character" % what)
        return b
    raise TypeError("%s must be a str, not %s" % (what, type(value).__name__))


def body_of(body) -> bytes:
    """A body as bytes: bytes-like objects as they are, str as UTF-8."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if body is None:
        return b""
    raise TypeError("body must be bytes or str, not %s" % type(body).__name__)


class Headers:
    """A dict of str as the library's key, value, ... array (kept alive
    as long as this object)."""

    __slots__ = ("array", "count", "_keep")

    def __init__(self, headers: Optional[dict]):
        self._keep = []
        if not headers:
            self.array, self.count = ffi.NULL, 0
            return
        for key, value in headers.items():
            self._keep.append(ffi.new("char[]", enc(key, "header key")))
            self._keep.append(ffi.new("char[]", enc(value, "header value")))
        self.array = ffi.new("char *[]", self._keep)
        self.count = len(headers)
