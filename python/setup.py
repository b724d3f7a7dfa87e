"""pip install ./python: builds meshbus._meshbus against the installed
library (pkg-config meshbus; `scons install` puts it there). Metadata and
entry points are in setup.cfg. Without network access, install into a
venv made with --system-site-packages (it needs Debian's python3-cffi)."""
from setuptools import setup

setup(cffi_modules=["meshbus/_build.py:ffibuilder"])
