"""oslo.messaging's own functional suite over meshbus:// (issue 16's
acceptance), run by run_functional.sh exactly as oslo runs it; the suite
test fails on any failure or error, and the tests the suite skips for
itself are listed with its reasons (the run takes about four minutes)."""
import os
import subprocess

import pytest

#   Found without importing it: oslo_messaging.tests monkey-patches the
#   importing process with eventlet, and this process then runs every other
#   test with green threads (a node's run_in_thread never ran: a hang)
def _have(module, *parts):
    import importlib.util
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return spec is not None
    return os.path.exists(os.path.join(list(spec.submodule_search_locations)[0], *parts))


if not (_have("oslo_messaging", "tests", "functional", "test_functional.py")
        and _have("oslotest") and _have("testscenarios")):
    pytest.skip("oslo.messaging's functional suite is not installed "
                "(./install-deps.sh installs python3-oslo.messaging and its test packages)",
                allow_module_level=True)

from conftest import PACKAGE_DIR  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_functional.sh")


@pytest.mark.bound(1500)
def test_oslo_functional_suite_passes():
    run = subprocess.run(["sh", SCRIPT, PACKAGE_DIR], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=1200)
    out = run.stdout.decode("utf-8", "replace")
    assert run.returncode == 0, out[-20000:]
    assert "Ran 31 tests" in out, out
    assert "skipped by the suite itself: 2 of 31" in out, out

