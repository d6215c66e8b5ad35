"""What the tests run against (COLONYD, COLONY_TEST_STORE, COLONY_TEST_PG_DSN_FILE)
and the processes they started (killed at exit if a test left one running)."""
import atexit
import hashlib
import hmac
import os
import time
import uuid

COLONYD = os.environ.get("COLONYD", "build/bin/colonyd")
STORE_KIND = os.environ.get("COLONY_TEST_STORE", "sqlite")
STRIPE_SECRET = "whsec_e2e_" + uuid.uuid4().hex


def stripe_headers(body, secret=STRIPE_SECRET, t=None):
    """A Stripe-Signature as Stripe computes it (Python's hmac, not Colony's code)."""
    t = int(time.time()) if t is None else t
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}


def store_spec():
    if STORE_KIND == "postgres":
        with open(os.environ["COLONY_TEST_PG_DSN_FILE"]) as f:
            return f.read().strip()
    return "sqlite:"


_STARTED = []
# The platform admin key each store handed out (a PostgreSQL database outlives
# the nodes that share it: only the first one writes admin.key).
_ADMIN_KEYS = {}


@atexit.register
def _kill_leftovers():
    """A test that failed half-way must not leave a node running."""
    for proc in _STARTED:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
