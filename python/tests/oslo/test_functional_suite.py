"""oslo.messaging's own functional suite over meshbus:// (issue 16's
acceptance), run by run_functional.sh exactly as oslo runs it; the suite
test fails on any failure or error, and the tests the suite skips for
itself are listed with its reasons (the run takes about four minutes)."""
import os
import subprocess

import pytest

pytest.importorskip("oslo_messaging.tests.functional.test_functional")
pytest.importorskip("oslotest")
pytest.importorskip("testscenarios")

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

