#!/usr/bin/env python3
"""Cross-check of the envelope wire format against python msgpack.

Run by tests/test_envelope.c as `test_envelope_python.py DIR`. The C side
has written DIR/c-N.bin (its encoding of case N below) and reads back the
frames this script writes. Both sides build the same CASES; a change to
one is a change to the other (see s_case in test_envelope.c).

Checks, for each case N:
  - msgpack.unpackb(c-N.bin) equals the case (C encodes what it means)
  - msgpack.packb(case) == c-N.bin byte for byte (same smallest encodings)
Writes, for the C side to decode and compare:
  - py-N.bin   msgpack.packb(case)
  - pyx-N.bin  the case with 5 extra trailing elements (a newer peer)
  - pyw-N.bin  the case packed by hand with the WIDEST encodings (array32,
               int64/uint64, str32, bin32, map32), which a decoder must
               also accept
Exit status 0 when every check holds.
"""
import os
import struct
import sys

import msgpack


def cases():
    return [
        [1, 6, 0, 1, 42, "orders.eu.created", None, 0, "application/json",
         None, b"x" * 100],
        [1, 0, 0, 0, 0, None, None, 0, None, None, None],
        [1, 255, 0xFFFFFFFF, 2**64 - 1, 2**32, "", "", 2**32 - 1, "",
         {"k": "v", "trace-id": "abc-123"}, b""],
        [1, 128, 65536, 127, 128, "s" * 255, "r" * 32, 65535, "c" * 127,
         {"h%02d" % i: "v" * (i * 10) for i in range(16)},
         bytes(i % 256 for i in range(256))],
        [1, 9, 1, 256, 65536, "orders.\u00fc.cr\u00e9\u00e9", "_INBOX.x",
         1700000000000, None,
         {"k%02d" % i: "\u00e9" * i for i in range(32)},
         bytes((i * 7) & 255 for i in range(65535))],
    ]


def wide(obj):
    """Pack obj with the largest encoding of each type (all still valid)."""
    if obj is None:
        return b"\xc0"
    if isinstance(obj, int):
        if obj < 2**63:
            return b"\xd3" + struct.pack(">q", obj)
        return b"\xcf" + struct.pack(">Q", obj)
    if isinstance(obj, str):
        raw = obj.encode("utf-8")
        return b"\xdb" + struct.pack(">I", len(raw)) + raw
    if isinstance(obj, bytes):
        return b"\xc6" + struct.pack(">I", len(obj)) + obj
    if isinstance(obj, list):
        return b"\xdd" + struct.pack(">I", len(obj)) + b"".join(map(wide, obj))
    if isinstance(obj, dict):
        return b"\xdf" + struct.pack(">I", len(obj)) + b"".join(
            wide(k) + wide(v) for k, v in obj.items())
    raise TypeError(type(obj))


def main():
    folder = sys.argv[1]
    failed = 0
    for n, case in enumerate(cases()):
        with open(os.path.join(folder, "c-%d.bin" % n), "rb") as f:
            ours = f.read()
        theirs = msgpack.packb(case, use_bin_type=True)
        got = msgpack.unpackb(ours, raw=False)
        if got != case:
            print(("case %d: C encoding unpacks to %r" % (n, got))[:300])
            failed += 1
        if theirs != ours:
            print("case %d: bytes differ from msgpack.packb\n  C:  %s\n  py: %s"
                  % (n, ours[:64].hex(), theirs[:64].hex()))
            failed += 1
        extras = [None, 7, -3, "future", b"\x00"]
        for prefix, frame in (("py", theirs),
                              ("pyx", msgpack.packb(case + extras)),
                              ("pyw", wide(case))):
            with open(os.path.join(folder, "%s-%d.bin" % (prefix, n)), "wb") as f:
                f.write(frame)
    print("python msgpack %s: %d cases, %d failures"
          % (".".join(map(str, msgpack.version)), len(cases()), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
