#!/usr/bin/env bash
#   README as a test, for the suite: tests/readme_test.py on the
#   repository's README.rst (every console block run literally)
here=$(cd "$(dirname "$0")/../.." && pwd)
if [ ! -x /usr/bin/python3 ]; then echo "SKIP: needs /usr/bin/python3"; exit 77; fi
exec /usr/bin/python3 "$here/tests/readme_test.py" "$here/README.rst"
