#!/usr/bin/env bash
#   The Python package's tests, for tests/run.sh: pytest with Debian's
#   Python (it sees python3-cffi and python3-pytest) against the package
#   that `scons python` built next to the tool ($MESHBUS_TOOL's variant).
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$(dirname "$MESHBUS_TOOL")/.." && pwd)
if ! /usr/bin/python3 -c 'import pytest, cffi' 2>/dev/null; then
    echo "SKIP: /usr/bin/python3 lacks pytest or cffi (./install-deps.sh installs them)"
    exit 77
fi
PYTHONPATH="$build/python" exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$here"
