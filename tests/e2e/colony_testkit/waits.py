"""The one wait helper of the tests: poll a condition until it holds."""
import time


def wait_until(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Returns predicate()'s first true value; raises AssertionError after `timeout` s."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() >= deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(interval)
