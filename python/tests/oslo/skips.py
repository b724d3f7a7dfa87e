"""List the tests of oslo.messaging's functional suite that the suite
itself skips for the transport URLs in the environment, with its reasons.

oslo's functional tests decide to skip (skipTest) in setUp or in the first
lines of a test, before their first fixture. So each test is run here with
useFixture() stopping it: a test that skips says so with its reason, the
others stop at their first fixture without doing anything (they are run
for real by run_functional.sh).
"""
import inspect
import unittest

import testtools

NAMES = ["oslo_messaging.tests.functional.test_functional",
         "oslo_messaging.tests.functional.notify.test_logger"]


class _ReachedFixture(Exception):
    """The test went past its skip checks."""


_real_use_fixture = testtools.TestCase.useFixture


def _stop(self, fixture):
    # setUp's own fixtures (configuration) are needed; the test's are not
    if getattr(self, "_in_body", False):
        raise _ReachedFixture()
    return _real_use_fixture(self, fixture)


def _body_flagged(test):
    method = getattr(test, test._testMethodName)
    # a body without a skip check is not entered at all (MetricsTestCase
    # starts a server process before its first fixture)
    decides = "skipTest" in inspect.getsource(method)

    def body(*args, **kwargs):
        test._in_body = True
        if decides:
            return method(*args, **kwargs)
        raise _ReachedFixture()
    setattr(test, test._testMethodName, body)


def main():
    suite = unittest.TestLoader().loadTestsFromNames(NAMES)
    testtools.TestCase.useFixture = _stop
    skipped = []
    total = 0
    for test in testtools.iterate_tests(suite):
        total += 1
        _body_flagged(test)
        result = unittest.TestResult()
        test.run(result)
        skipped += [(case.id(), reason) for case, reason in result.skipped]
    print("skipped by the suite itself: %d of %d" % (len(skipped), total))
    for name, reason in skipped:
        print("  %s: %s" % (name, reason))


if __name__ == "__main__":
    main()
