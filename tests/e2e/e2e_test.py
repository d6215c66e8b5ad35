#!/usr/bin/env python3
"""End-to-end tests: start colonyd, drive it over HTTP with http.client.

Environment: COLONYD (path to the binary), COLONY_TEST_STORE (sqlite|postgres),
COLONY_TEST_PG_DSN_FILE (for postgres, written by tests/support/pg_fixture.sh).
"""
import atexit
import hashlib
import hmac
import http.client
import http.server
import threading
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

COLONYD = os.environ.get("COLONYD", "build/bin/colonyd")
STORE_KIND = os.environ.get("COLONY_TEST_STORE", "sqlite")
STRIPE_SECRET = "whsec_e2e_" + uuid.uuid4().hex


def stripe_headers(body, secret=STRIPE_SECRET, t=None):
    """A Stripe-Signature as Stripe computes it (Python's hmac, not Colony's code)."""
    t = int(time.time()) if t is None else t
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class Node:
    """One colonyd process on a free loopback port with its own data dir."""

    def __init__(self, data_dir, extra=(), tls_ca=None):
        self.data_dir = data_dir
        self.tls = None
        if tls_ca:  # the node serves HTTPS with a certificate this CA file vouches for
            import ssl
            self.tls = ssl.create_default_context(cafile=tls_ca)
        self.port = free_port()
        self.log_path = os.path.join(data_dir, "colonyd.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            # The test receivers listen on loopback: tests of the SSRF guard
            # pass --webhooks.allow-private-targets false (later flags win).
            [COLONYD, "--listen", f"127.0.0.1:{self.port}", "--data-dir", data_dir,
             "--store", store_spec(), "--webhooks.allow-private-targets", "true", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        _STARTED.append(self.proc)
        self.conn = None
        self.admin_key = None
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("colonyd exited early:\n" + self.logs())
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    self._read_admin_key()
                    return
            except OSError:
                self.conn = None
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("colonyd not ready:\n" + self.logs())

    def _read_admin_key(self):
        path = os.path.join(self.data_dir, "admin.key")
        if os.path.exists(path):
            with open(path) as f:
                _ADMIN_KEYS[store_spec()] = f.read().strip()
        self.admin_key = _ADMIN_KEYS.get(store_spec())

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, raw=None, auth=True):
        """Sends the platform admin key unless `auth` is False or a token/key string."""
        headers = dict(headers or {})
        key = self.admin_key if auth is True else auth
        if key and "Authorization" not in headers:
            headers["Authorization"] = "Bearer " + key
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        for attempt in range(2):
            if self.conn is None:
                self.conn = (http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.tls)
                             if self.tls else http.client.HTTPConnection("127.0.0.1", self.port, timeout=30))
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, dict(resp.getheaders()), payload
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn = None
                if attempt == 1:
                    raise

    def json(self, method, path, body=None, headers=None, auth=True):
        status, hdrs, payload = self.request(method, path, body, headers, auth=auth)
        doc = json.loads(payload) if payload and hdrs.get("Content-Type", "").endswith("json") else None
        return status, hdrs, doc

    def stop(self, sig=signal.SIGTERM):
        if self.conn:
            self.conn.close()
        self.proc.send_signal(sig)
        started = time.time()
        code = self.proc.wait(timeout=15)
        self.log.close()
        if code != 0:  # say why before the test's clean-up removes the data dir and its log
            import sys
            print(f"colonyd exited {code}; the end of its log:\n" + self.logs()[-8000:], file=sys.stderr)
        return code, time.time() - started


class E2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-")
        cls.node = Node(cls.dir, ["--debug.fault-injection", "true", "--stripe-webhook-secret", STRIPE_SECRET,
                                  "--billing.payment-grace", "1s", "--timers.poll-interval", "200ms",
                                  "--http.cors-origins", "https://app.example.com,http://localhost:3000"])

    @classmethod
    def tearDownClass(cls):
        code, _ = cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert code == 0, code

    def tenant(self, plan="free", slug=None):
        slug = slug or "t-" + uuid.uuid4().hex[:12]
        status, hdrs, doc = self.node.json("POST", "/v1/tenants", {"slug": slug, "name": "Tenant " + slug, "plan": plan})
        self.assertEqual(status, 201, doc)
        return doc

    def assertProblem(self, resp, status, type_suffix=None):
        code, hdrs, doc = resp
        self.assertEqual(code, status, doc)
        self.assertEqual(hdrs.get("Content-Type"), "application/problem+json")
        for key in ("type", "title", "status", "detail", "requestId"):
            self.assertIn(key, doc)
        self.assertEqual(doc["status"], status)
        self.assertNotIn("SQL", doc["detail"])
        if type_suffix:
            self.assertTrue(doc["type"].endswith("/" + type_suffix), doc["type"])
        return doc

    # -- tenants ---------------------------------------------------------------

    def test_tenant_lifecycle(self):
        n = self.node
        slug = "life-" + uuid.uuid4().hex[:8]
        status, hdrs, t = n.json("POST", "/v1/tenants", {"slug": slug, "name": "Life", "settings": {"primaryColor": "#112233"}})
        self.assertEqual(status, 201)
        self.assertEqual(hdrs["Location"], "/v1/tenants/" + t["id"])
        self.assertEqual(hdrs["ETag"], '"1"')
        self.assertEqual(t["status"], "trial")
        self.assertEqual(t["plan"], "free")
        self.assertEqual(t["limits"]["maxUsers"], 5)
        self.assertEqual(len(t["id"]), 36)
        self.assertEqual(t["id"][14], "7")  # UUIDv7
        self.assertEqual(n.json("GET", "/v1/tenants/" + slug)[2]["id"], t["id"])

        status, hdrs, p = n.json("PATCH", "/v1/tenants/" + t["id"], {"name": "Life GmbH", "settings": {"displayName": "Life"}},
                                 {"If-Match": '"1"', "Content-Type": "application/merge-patch+json"})
        self.assertEqual(status, 200, p)
        self.assertEqual(p["name"], "Life GmbH")
        self.assertEqual(p["settings"]["primaryColor"], "#112233")
        self.assertEqual(hdrs["ETag"], '"2"')
        self.assertProblem(n.json("PATCH", "/v1/tenants/" + t["id"], {"name": "x"}, {"If-Match": '"1"'}), 412, "precondition-failed")

        self.assertEqual(n.json("POST", f"/v1/tenants/{t['id']}/activate")[0], 200)
        doc = self.assertProblem(n.json("POST", f"/v1/tenants/{t['id']}/activate"), 409, "illegal-transition")
        self.assertEqual((doc["from"], doc["to"]), ("active", "active"))
        status, _, s = n.json("POST", f"/v1/tenants/{t['id']}/suspend", {"reason": "unpaid"})
        self.assertEqual((status, s["status"], s["statusReason"]), (200, "suspended", "unpaid"))

        usage = n.json("GET", f"/v1/tenants/{t['id']}/usage")[2]
        self.assertEqual(usage["usage"]["users"], 0)
        self.assertEqual(usage["limits"]["maxUsers"], 5)

        self.assertProblem(n.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "a@b.co"}), 403, "tenant-suspended")
        self.assertEqual(n.json("POST", f"/v1/tenants/{t['id']}/cancel")[0], 200)
        self.assertProblem(n.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "a@b.co"}), 403, "tenant-cancelled")
        self.assertProblem(n.json("POST", f"/v1/tenants/{t['id']}/activate"), 409, "illegal-transition")

    # -- events ----------------------------------------------------------------

    def test_every_change_is_an_event_in_commit_order(self):
        n = self.node
        status, _, head = n.json("GET", "/v1/events?limit=1000")
        self.assertEqual(status, 200)
        start = head["nextAfter"]
        while head["data"]:  # skip to the end of what earlier tests wrote
            head = n.json("GET", f"/v1/events?after={start}&limit=1000")[2]
            start = head["nextAfter"]

        t = self.tenant(plan="free")
        tid = t["id"]
        rid = "req-" + uuid.uuid4().hex
        self.assertEqual(n.json("PATCH", f"/v1/tenants/{tid}", {"plan": "pro"}, {"X-Request-Id": rid})[0], 200)
        self.assertEqual(n.json("POST", f"/v1/tenants/{tid}/activate")[0], 200)
        status, _, u = n.json("POST", f"/v1/tenants/{tid}/users", {"email": "ev@example.com", "name": "Ev"})
        self.assertEqual(status, 201)
        self.assertEqual(n.json("PATCH", f"/v1/tenants/{tid}/users/{u['id']}", {"name": "Eve"})[0], 200)
        # A refused change leaves no event.
        self.assertEqual(n.json("POST", f"/v1/tenants/{tid}/users", {"email": "EV@example.com"})[0], 409)
        self.assertEqual(n.json("DELETE", f"/v1/tenants/{tid}/users/{u['id']}")[0], 204)
        self.assertEqual(n.json("POST", f"/v1/tenants/{tid}/suspend", {"reason": "unpaid"})[0], 200)

        status, _, feed = n.json("GET", f"/v1/tenants/{t['slug']}/events")
        self.assertEqual(status, 200, feed)
        events = [item["event"] for item in feed["data"]]
        self.assertEqual([e["type"] for e in events],
                         ["tenant.created", "tenant.plan_changed", "tenant.updated", "tenant.activated",
                          "user.created", "user.updated", "user.deleted", "tenant.suspended"])
        positions = [item["position"] for item in feed["data"]]
        self.assertEqual(positions, sorted(positions))
        self.assertEqual(feed["nextAfter"], positions[-1])
        self.assertEqual(len({e["id"] for e in events}), len(events))
        self.assertTrue(all(e["tenantId"] == tid for e in events))
        created, plan_changed, _, _, user_created, user_updated, user_deleted, suspended = events
        self.assertEqual(created["tenantChanged"]["state"]["slug"], t["slug"])
        self.assertEqual((created["aggregateKind"], created["aggregateId"], created["aggregateVersion"]), ("tenant", tid, 1))
        self.assertEqual(plan_changed["requestId"], rid)
        self.assertEqual(plan_changed["tenantChanged"]["previousPlan"], "free")
        self.assertEqual(plan_changed["tenantChanged"]["state"]["plan"], "pro")
        self.assertEqual(user_created["aggregateKind"], "user")
        self.assertEqual(user_created["userChanged"]["state"]["email"], "ev@example.com")
        self.assertEqual(user_updated["userChanged"]["state"]["name"], "Eve")
        self.assertEqual(user_updated["aggregateVersion"], 2)
        self.assertEqual(user_deleted["userDeleted"], {"userId": u["id"]})
        self.assertNotIn("ev@example.com", json.dumps(user_deleted))
        self.assertEqual(suspended["tenantChanged"]["previousStatus"], "active")
        self.assertEqual(suspended["tenantChanged"]["state"]["statusReason"], "unpaid")

        # The all-tenants feed holds the same events at the same positions; paging resumes after a position.
        seen, after = [], start
        while True:
            status, _, page = n.json("GET", f"/v1/events?after={after}&limit=3")
            self.assertEqual(status, 200)
            seen += [(item["position"], item["event"]["id"]) for item in page["data"] if item["event"]["tenantId"] == tid]
            if not page["data"]:
                break
            after = page["nextAfter"]
        self.assertEqual(seen, [(p, e["id"]) for p, e in zip(positions, events)])
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}/events?after={positions[-1]}")[2]["data"], [])

        self.assertProblem(n.json("GET", "/v1/events?after=-1"), 400, "invalid-parameter")
        self.assertProblem(n.json("GET", "/v1/events?after=abc"), 400, "invalid-parameter")
        self.assertProblem(n.json("GET", "/v1/events?limit=1001"), 400, "invalid-parameter")
        self.assertProblem(n.json("GET", f"/v1/tenants/{uuid.uuid4()}/events"), 404, "not-found")

    def test_trial_expiry_suspends_the_tenant_through_a_durable_timer(self):
        n = self.node
        t = self.tenant()
        self.assertEqual(t["status"], "trial")
        soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1)) + "Z"
        status, _, p = n.json("PATCH", f"/v1/tenants/{t['id']}", {"trialEndsAt": soon})
        self.assertEqual(status, 200, p)
        deadline = time.time() + 15
        while time.time() < deadline:
            cur = n.json("GET", f"/v1/tenants/{t['id']}")[2]
            if cur["status"] != "trial":
                break
            time.sleep(0.1)
        self.assertEqual((cur["status"], cur["statusReason"]), ("suspended", "trial_expired"))
        events = [i["event"] for i in n.json("GET", f"/v1/tenants/{t['id']}/events")[2]["data"]]
        self.assertEqual([e["type"] for e in events][-1], "tenant.suspended")
        self.assertEqual(events[-1]["requestId"], "timer-trial:" + t["id"])
        # Only a trial has a trial end to move.
        later = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 86400)) + "Z"
        doc = self.assertProblem(n.json("PATCH", f"/v1/tenants/{t['id']}", {"trialEndsAt": later}), 409)
        self.assertIn("trial", doc["detail"])
        # An activated tenant's old trial timer does nothing.
        t2 = self.tenant()
        self.assertEqual(n.json("PATCH", f"/v1/tenants/{t2['id']}", {"trialEndsAt": soon})[0], 200)
        self.assertEqual(n.json("POST", f"/v1/tenants/{t2['id']}/activate")[0], 200)
        time.sleep(2.5)
        self.assertEqual(n.json("GET", f"/v1/tenants/{t2['id']}")[2]["status"], "active")

    # -- billing ---------------------------------------------------------------

    def stripe(self, event_type, obj, event_id=None, **kw):
        body = json.dumps({"id": event_id or "evt_" + uuid.uuid4().hex, "object": "event", "type": event_type,
                           "data": {"object": obj}}).encode()
        return self.node.request("POST", "/v1/billing/webhooks/stripe", raw=body, headers=stripe_headers(body, **kw))

    def test_stripe_webhooks_drive_the_tenant_lifecycle(self):
        n = self.node
        t = self.tenant()
        tid, cus = t["id"], "cus_" + uuid.uuid4().hex[:10]
        status, _, body = self.stripe("customer.subscription.created",
                                      {"id": "sub_1", "customer": cus, "status": "active",
                                       "metadata": {"tenant_id": tid},
                                       "items": {"data": [{"price": {"lookup_key": "pro"}}]}})
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["applied"])
        cur = n.json("GET", f"/v1/tenants/{tid}")[2]
        self.assertEqual((cur["status"], cur["plan"], cur["limits"]["maxUsers"]), ("active", "pro", 250))
        self.assertEqual(cur["billing"]["customerId"], cus)

        # Later events name only the customer; a failed payment suspends after the grace period.
        failed_id = "evt_" + uuid.uuid4().hex
        self.assertEqual(self.stripe("invoice.payment_failed", {"customer": cus, "subscription": "sub_1"},
                                     event_id=failed_id)[0], 200)
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}")[2]["billing"]["paymentStatus"], "past_due")
        deadline = time.time() + 15
        while time.time() < deadline and n.json("GET", f"/v1/tenants/{tid}")[2]["status"] != "suspended":
            time.sleep(0.1)
        cur = n.json("GET", f"/v1/tenants/{tid}")[2]
        self.assertEqual((cur["status"], cur["statusReason"]), ("suspended", "payment_failed"))

        status, _, body = self.stripe("invoice.paid", {"customer": cus, "subscription": "sub_1"})
        self.assertEqual(status, 200)
        cur = n.json("GET", f"/v1/tenants/{tid}")[2]
        self.assertEqual((cur["status"], cur["billing"]["paymentStatus"]), ("active", "ok"))

        # A redelivered event id is not applied twice (it would mark the tenant past due again).
        version = cur["version"]
        status, _, body = self.stripe("invoice.payment_failed", {"customer": cus}, event_id=failed_id)
        self.assertEqual(status, 200)
        cur = n.json("GET", f"/v1/tenants/{tid}")[2]
        self.assertEqual((cur["version"], cur["billing"]["paymentStatus"]), (version, "ok"))

        # Events Colony does not use are acknowledged; unknown customers change nothing.
        status, _, body = self.stripe("charge.refunded", {"customer": cus})
        self.assertEqual((status, json.loads(body)["applied"]), (200, False))
        status, _, body = self.stripe("invoice.paid", {"customer": "cus_unknown"})
        self.assertEqual((status, json.loads(body)["applied"]), (200, False))

        self.assertEqual(self.stripe("customer.subscription.deleted", {"id": "sub_1", "customer": cus})[0], 200)
        cur = n.json("GET", f"/v1/tenants/{tid}")[2]
        self.assertEqual((cur["status"], cur["statusReason"]), ("cancelled", "subscription_deleted"))
        types = [i["event"]["type"] for i in n.json("GET", f"/v1/tenants/{tid}/events")[2]["data"]]
        self.assertEqual(types, ["tenant.created", "tenant.plan_changed", "tenant.activated", "tenant.updated",
                                 "tenant.suspended", "tenant.activated", "tenant.cancelled"])

    def test_stripe_signatures_that_do_not_verify_change_nothing(self):
        n = self.node
        t = self.tenant()
        body = json.dumps({"id": "evt_x", "type": "customer.subscription.deleted",
                           "data": {"object": {"metadata": {"tenant_id": t["id"]}}}}).encode()
        tampered = body.replace(b"evt_x", b"evt_y")
        cases = [
            (tampered, stripe_headers(body)),                                        # body changed
            (body, stripe_headers(body, secret="whsec_wrong")),                      # wrong secret
            (body, stripe_headers(body, t=int(time.time()) - 301)),                  # too old
            (body, {"Content-Type": "application/json"}),                            # no header
            (body, {"Stripe-Signature": "garbage", "Content-Type": "application/json"}),
        ]
        for raw, headers in cases:
            status, hdrs, payload = n.request("POST", "/v1/billing/webhooks/stripe", raw=raw, headers=headers)
            self.assertEqual(status, 400, payload)
            self.assertTrue(json.loads(payload)["type"].endswith("/invalid-signature"))
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}")[2]["status"], "trial")
        raw = b"not json"
        self.assertEqual(n.request("POST", "/v1/billing/webhooks/stripe", raw=raw, headers=stripe_headers(raw))[0], 400)

    def test_tenant_list_filters_sort_and_cursor(self):
        n = self.node
        prefix = "ls-" + uuid.uuid4().hex[:6]
        ids = []
        for i in range(7):
            t = self.tenant(plan="pro", slug=f"{prefix}-{i}")
            ids.append(t["id"])
        n.json("POST", f"/v1/tenants/{ids[0]}/activate")
        status, _, page = n.json("GET", "/v1/tenants?plan=pro&status=active&limit=500")
        self.assertEqual(status, 200)
        self.assertIn(ids[0], [t["id"] for t in page["data"]])
        self.assertTrue(all(t["status"] == "active" and t["plan"] == "pro" for t in page["data"]))
        seen, cursor = [], None
        while True:
            q = "/v1/tenants?sort=-slug&limit=3" + (f"&cursor={cursor}" if cursor else "")
            status, _, page = n.json("GET", q)
            self.assertEqual(status, 200, page)
            seen += [t["slug"] for t in page["data"]]
            cursor = page["nextCursor"]
            if not cursor:
                break
        self.assertEqual(seen, sorted(seen, reverse=True))
        self.assertEqual(len(seen), len(set(seen)))
        self.assertTrue(set(f"{prefix}-{i}" for i in range(7)) <= set(seen))
        status, _, first = n.json("GET", "/v1/tenants?sort=-slug&limit=1")
        self.assertProblem(n.json("GET", "/v1/tenants?sort=slug&cursor=" + first["nextCursor"]), 400, "invalid-parameter")
        self.assertProblem(n.json("GET", "/v1/tenants?status=sleeping"), 400, "invalid-parameter")
        self.assertProblem(n.json("GET", "/v1/tenants?limit=501"), 400, "invalid-parameter")
        self.assertProblem(n.json("GET", "/v1/tenants?sort=color"), 400, "invalid-parameter")

    # -- users -----------------------------------------------------------------

    def test_paging_through_1000_users_while_adding(self):
        n = self.node
        t = self.tenant(plan="enterprise")
        base = f"/v1/tenants/{t['id']}/users"
        for i in range(1000):
            status, _, u = n.json("POST", base, {"email": f"user{i:04d}@example.com", "name": f"User {i:04d}",
                                                 "roles": ["admin"] if i % 10 == 0 else ["member"]})
            self.assertEqual(status, 201, u)
        seen, cursor, pages = [], None, 0
        while True:
            status, _, page = n.json("GET", base + "?sort=email&limit=100" + (f"&cursor={cursor}" if cursor else ""))
            self.assertEqual(status, 200, page)
            seen += [u["email"] for u in page["data"]]
            pages += 1
            if pages == 3:  # users added mid-way sort before and after the cursor
                n.json("POST", base, {"email": "aaa-early@example.com"})
                n.json("POST", base, {"email": "zzz-late@example.com"})
            cursor = page["nextCursor"]
            if not cursor:
                break
        self.assertEqual(len(seen), 1001)  # 1000 + the late one; the early one sorts before the cursor
        self.assertEqual(len(set(seen)), 1001)
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}/usage")[2]["usage"]["users"], 1002)
        admins = n.json("GET", base + "?role=admin&limit=500")[2]["data"]
        self.assertEqual(len(admins), 100)
        found = n.json("GET", base + "?q=USER%200999")[2]["data"]
        self.assertEqual([u["email"] for u in found], ["user0999@example.com"])
        desc = n.json("GET", base + "?sort=-createdAt&limit=2")[2]["data"]
        self.assertEqual(desc[0]["email"], "zzz-late@example.com")

    def test_a_read_renders_the_same_json_as_the_write_with_sorted_map_keys(self):
        status, _, t = self.node.json("POST", "/v1/tenants", {"slug": "js-" + uuid.uuid4().hex[:8], "name": "J",
                                                              "plan": "pro"})
        self.assertEqual(status, 201)
        body = {"email": "json@example.com", "name": "Zoë \"Q\" O'Neil", "roles": ["admin", "member"],
                "attributes": {"zz": 0, "a": 1, "b": {"c": [True, None]}, "m": "x"}}
        status, _, created_raw = self.node.request("POST", f"/v1/tenants/{t['id']}/users", body)
        self.assertEqual(status, 201, created_raw)
        uid = json.loads(created_raw)["id"]
        status, _, read_raw = self.node.request("GET", f"/v1/tenants/{t['id']}/users/{uid}")
        self.assertEqual(status, 200)
        self.assertEqual(read_raw, created_raw)  # byte for byte
        self.assertEqual(list(json.loads(read_raw)["attributes"]), ["a", "b", "m", "zz"])

    def test_cors_by_allow_list(self):
        n = self.node
        # Preflight from an allowed origin: 204 with the grant, echoing the origin.
        status, hdrs, _ = n.request("OPTIONS", "/v1/tenants", headers={
            "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(status, 204)
        self.assertEqual(hdrs["Access-Control-Allow-Origin"], "https://app.example.com")
        self.assertIn("POST", hdrs["Access-Control-Allow-Methods"])
        self.assertIn("Content-Type", hdrs["Access-Control-Allow-Headers"])
        self.assertEqual(hdrs["Vary"], "Origin")
        # A real request from an allowed origin carries the grant and exposes the useful headers.
        status, hdrs, _ = n.request("GET", "/livez", headers={"Origin": "http://localhost:3000"})
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Access-Control-Allow-Origin"], "http://localhost:3000")
        self.assertIn("ETag", hdrs["Access-Control-Expose-Headers"])
        # Another origin: no grant on requests, 403 problem on preflight; no Origin: no CORS headers.
        status, hdrs, _ = n.request("GET", "/livez", headers={"Origin": "https://evil.example"})
        self.assertEqual(status, 200)
        self.assertNotIn("Access-Control-Allow-Origin", hdrs)
        status, hdrs, payload = n.request("OPTIONS", "/v1/tenants", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"})
        self.assertEqual(status, 403)
        self.assertEqual(json.loads(payload)["type"], "https://colony.dev/problems/cors-origin-not-allowed")
        self.assertNotIn("Access-Control-Allow-Origin", hdrs)
        status, hdrs, _ = n.request("GET", "/livez")
        self.assertNotIn("Access-Control-Allow-Origin", hdrs)

    def test_request_line_and_header_count_limits(self):
        """414 for a request line over http.request-line-limit (8 KiB), whether or not it also
        passes the header-size limit; 431 for more than http.header-count-limit (100) fields."""
        for length in (9000, 20000):  # under and over http.header-limit (16 KiB)
            conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
            conn.request("GET", "/v1/tenants/" + "a" * length)
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 414, length)
            doc = json.loads(body)
            self.assertEqual(doc["type"], "https://colony.dev/problems/uri-too-long")
            self.assertEqual(doc["requestId"], resp.getheader("X-Request-Id"))
            conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        conn.request("GET", "/livez", headers={f"X-Many-{i}": "1" for i in range(101)})
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        self.assertEqual(resp.status, 431)
        self.assertIn("more than 100 header fields", doc["detail"])
        conn.close()
        status, _, _ = self.node.request("GET", "/livez", headers={f"X-Some-{i}": "1" for i in range(90)})
        self.assertEqual(status, 200)
        status, _, _ = self.node.request("GET", "/v1/tenants/" + "a" * 7000)
        self.assertNotEqual(status, 414)

    def test_user_crud_limits_and_uniqueness(self):
        n = self.node
        t = self.tenant(plan="free")
        base = f"/v1/tenants/{t['id']}/users"
        status, hdrs, ann = n.json("POST", base, {"email": "Ann@Example.com", "name": "Ann", "roles": ["owner"], "attributes": {"team": "core"}})
        self.assertEqual(status, 201, ann)
        self.assertEqual(hdrs["Location"], f"{base}/{ann['id']}")
        self.assertProblem(n.json("POST", base, {"email": "ann@EXAMPLE.com"}), 409, "conflict")
        other = self.tenant()
        self.assertEqual(n.json("POST", f"/v1/tenants/{other['id']}/users", {"email": "ann@example.com"})[0], 201)

        status, hdrs, p = n.json("PATCH", f"{base}/{ann['id']}", {"attributes": {"team": None, "tz": "UTC"}, "status": "disabled"},
                                 {"If-Match": '"1"'})
        self.assertEqual(status, 200, p)
        self.assertEqual(p["attributes"], {"tz": "UTC"})
        self.assertEqual(p["status"], "disabled")
        self.assertEqual(n.json("GET", f"{base}/{ann['id']}")[2]["version"], 2)
        self.assertProblem(n.json("GET", f"/v1/tenants/{other['id']}/users/{ann['id']}"), 404)

        for i in range(4):
            self.assertEqual(n.json("POST", base, {"email": f"u{i}@example.com"})[0], 201)
        doc = self.assertProblem(n.json("POST", base, {"email": "six@example.com"}), 403, "limit-exceeded")
        self.assertEqual((doc["limit"], doc["current"]), (5, 5))
        self.assertEqual(n.json("PATCH", f"/v1/tenants/{t['id']}", {"plan": "starter"})[0], 200)
        self.assertEqual(n.request("DELETE", f"{base}/{ann['id']}")[0], 204)
        self.assertProblem(n.json("GET", f"{base}/{ann['id']}"), 404)
        self.assertProblem(n.json("DELETE", f"{base}/{ann['id']}"), 404)
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}/usage")[2]["usage"]["users"], 4)

    def test_plan_below_usage_is_refused(self):
        n = self.node
        t = self.tenant(plan="starter")
        for i in range(6):
            self.assertEqual(n.json("POST", f"/v1/tenants/{t['id']}/users", {"email": f"p{i}@example.com"})[0], 201)
        doc = self.assertProblem(n.json("PATCH", f"/v1/tenants/{t['id']}", {"plan": "free"}), 409, "plan-below-usage")
        self.assertIn("6", doc["detail"])
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}")[2]["plan"], "starter")

    # -- bad input ---------------------------------------------------------------

    def test_bad_input_gets_problems_never_500(self):
        n = self.node
        t = self.tenant()
        status, hdrs, payload = n.request("POST", "/v1/tenants", raw=b"{not json", headers={"Content-Type": "application/json"})
        self.assertProblem((status, hdrs, json.loads(payload)), 400, "malformed-request")
        doc = self.assertProblem(n.json("POST", "/v1/tenants", {"slug": 42, "name": "x"}), 400)
        self.assertEqual(doc["errors"][0]["field"], "slug")
        doc = self.assertProblem(n.json("POST", "/v1/tenants", {"slug": "okay-slug", "name": "x", "colour": "red"}), 400)
        self.assertEqual(doc["errors"][0]["field"], "colour")
        doc = self.assertProblem(n.json("POST", "/v1/tenants", {"slug": "No", "name": "x"}), 400, "validation-error")
        self.assertEqual(doc["errors"][0]["field"], "slug")
        self.assertProblem(n.json("POST", "/v1/tenants", ["a"]), 400)
        status, hdrs, payload = n.request("POST", "/v1/tenants", raw=b'{"slug":"x"}', headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415)
        big = b'{"name":"' + b"x" * (1024 * 1024 + 10) + b'"}'
        status, hdrs, payload = n.request("POST", "/v1/tenants", raw=big, headers={"Content-Type": "application/json"})
        self.assertEqual(status, 413)
        self.assertEqual(json.loads(payload)["status"], 413)
        self.assertProblem(n.json("GET", "/v1/tenants/NOT_AN_ID"), 400, "invalid-id")
        self.assertProblem(n.json("GET", f"/v1/tenants/{t['id']}/users/123"), 400, "invalid-id")
        self.assertProblem(n.json("GET", "/v1/tenants/" + str(uuid.uuid4())), 404, "not-found")
        self.assertProblem(n.json("GET", "/v1/tenants/no-such-slug"), 404, "not-found")
        self.assertProblem(n.json("GET", f"/v1/tenants/{t['id']}/users?cursor=bm90LWEtY3Vyc29y"), 400, "invalid-parameter")
        self.assertProblem(n.json("GET", "/v1/nothing-here"), 404, "not-found")
        status, hdrs, doc = n.json("DELETE", "/v1/tenants")
        self.assertEqual(status, 405)
        self.assertEqual(set(hdrs["Allow"].split(", ")), {"GET", "POST"})
        self.assertProblem(n.json("PATCH", f"/v1/tenants/{t['id']}", {"status": "active"}), 400)
        self.assertProblem(n.json("PATCH", f"/v1/tenants/{t['id']}", {"name": "x"}, {"If-Match": "garbage"}), 412)
        # Nothing half-written: the tenant is unchanged by all of the above.
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}")[2]["version"], 1)

    # -- operations ---------------------------------------------------------------

    def test_gdpr_export_then_erasure_from_state_events_deliveries_and_audit(self):
        t = self.tenant()
        base = f"/v1/tenants/{t['id']}"
        status, _, hook = self.node.json("POST", base + "/webhooks", {"url": "http://127.0.0.1:9/gone",
                                                                      "eventTypes": ["user.*"]})
        self.assertEqual(status, 201)
        email, name = f"erase-{uuid.uuid4().hex[:6]}@example.com", "Erin Erasable"
        status, _, u = self.node.json("POST", base + "/users", {"email": email, "name": name,
                                                                "attributes": {"phone": "+49 555 0100"}})
        self.assertEqual(status, 201, u)
        status, _, _ = self.node.json("PATCH", f"{base}/users/{u['id']}", {"name": name + " II"},
                                      headers={"Content-Type": "application/merge-patch+json"})
        self.assertEqual(status, 200)
        self.assertEqual(self.node.json("POST", base + "/users", {"email": email})[0], 409)  # a refused write, audited
        # Export: state, events and audit records, one document.
        status, hdrs, doc = self.node.json("GET", f"{base}/users/{u['id']}/export")
        self.assertEqual(status, 200, doc)
        self.assertIn("attachment", hdrs["Content-Disposition"])
        self.assertEqual(doc["user"]["email"], email)
        self.assertEqual([e["type"] for e in doc["events"]], ["user.created", "user.updated"])
        self.assertEqual(doc["events"][0]["userChanged"]["state"]["attributes"], {"phone": "+49 555 0100"})
        self.assertEqual({a["action"] for a in doc["auditRecords"]}, {"user.created", "user.updated"})
        deadline = time.time() + 10  # deliveries exist (failing: the endpoint is down) before the erasure
        while len(self.node.json("GET", f"{base}/webhooks/{hook['id']}/deliveries")[2]["data"]) < 2:
            self.assertLess(time.time(), deadline)
            time.sleep(0.1)
        self.assertEqual(self.node.json("DELETE", f"{base}/users/{u['id']}?erase=maybe")[0], 400)
        self.assertEqual(self.node.request("DELETE", f"{base}/users/{u['id']}?erase=true")[0], 204)
        # Gone from state; events keep ids, roles and times but no personal data; a tombstone follows.
        self.assertEqual(self.node.json("GET", f"{base}/users/{u['id']}")[0], 404)
        status, _, feed = self.node.json("GET", f"{base}/events?after=0&limit=1000")
        text = json.dumps(feed)
        for secret in (email, "Erin", "555 0100"):
            self.assertNotIn(secret, text)
        mine = [e["event"] for e in feed["data"] if e["event"]["aggregateId"] == u["id"]]
        self.assertEqual([e["type"] for e in mine], ["user.created", "user.updated", "user.deleted", "user.erased"])
        self.assertEqual(mine[0]["userChanged"]["state"]["id"], u["id"])
        self.assertEqual(mine[-1]["userDeleted"]["userId"], u["id"])
        status, _, after = self.node.json("GET", f"{base}/users/{u['id']}/export")
        self.assertEqual(status, 200)
        self.assertIsNone(after["user"])
        self.assertNotIn(email, json.dumps(after))
        self.assertIn("user.erased", {a["action"] for a in after["auditRecords"]})
        status, _, log = self.node.json("GET", f"{base}/audit-log?limit=500")
        self.assertNotIn(email, json.dumps(log))  # no record about the user keeps personal details
        if STORE_KIND == "sqlite":  # what webhook deliveries will still send, read from the database itself
            import sqlite3
            with sqlite3.connect(os.path.join(self.dir, "colony.db")) as db:
                bodies = [r[0] for r in db.execute("SELECT body FROM webhook_deliveries WHERE tenant_id = ?", (t["id"],))]
            self.assertGreaterEqual(len(bodies), 2)
            self.assertFalse([b for b in bodies if email in b or "Erin" in b])
        # An id nobody knows is not erased.
        self.assertEqual(self.node.request("DELETE", f"{base}/users/{uuid.uuid4()}?erase=true")[0], 404)

    def test_paths_and_parameters_that_are_not_utf8_get_problems_not_500(self):
        """Regression from fuzz_http: a 404 quoting a non-UTF-8 path made the JSON encoder throw (500)."""
        for path in (b"/v1/t\xa2\x91ants/acme/api-keys", b"/v1/tenants?plan=\xff\xfe", b"/v1/tenants/\xc0\xaf"):
            with socket.create_connection(("127.0.0.1", self.node.port), timeout=10) as s:
                s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " +
                          self.node.admin_key.encode() + b"\r\n\r\n")
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            status = int(head.split(b" ")[1])
            self.assertIn(status, (400, 404), (path, answer))
            doc = json.loads(body)
            self.assertEqual(doc["status"], status)
            self.assertIn("\ufffd", doc["detail"])

    def raw_exchange(self, request, answers, heads=()):
        """Sends raw bytes; reads `answers` responses (by Content-Length; those numbered in `heads` answer a HEAD);
        returns [(status line, fields, body)]."""
        out = []
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=10) as s:
            s.sendall(request)
            buf = b""
            while len(out) < answers:
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, (request, buf, out))
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                fields = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(": ")
                    self.assertTrue(sep and name.strip() == name, line)
                    self.assertNotIn(name.lower(), fields, lines)  # each field once
                    fields[name.lower()] = value
                length = 0 if len(out) in heads or lines[0].split(" ")[1] in ("204", "304") else \
                    int(fields["content-length"])
                while len(buf) < length:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk)
                    buf += chunk
                out.append((lines[0], fields, buf[:length]))
                buf = buf[length:]
            s.settimeout(0.3)
            try:
                self.assertEqual(s.recv(65536) if "close" in out[-1][1].get("connection", "") else b"", b"")
            except socket.timeout:
                pass
        return out

    def test_the_answer_on_the_wire_head_http10_204_and_pipelining(self):
        """The node writes its answers itself (status line, fields, body): checked byte-level here."""
        auth = b"Authorization: Bearer " + self.node.admin_key.encode() + b"\r\n"
        t = self.tenant()
        get = b"GET /v1/tenants/" + t["id"].encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
        [(line, fields, body)] = self.raw_exchange(get, 1)
        self.assertEqual(line, "HTTP/1.1 200 OK")
        self.assertEqual(json.loads(body)["id"], t["id"])
        self.assertEqual(int(fields["content-length"]), len(body))
        self.assertEqual(fields["content-type"], "application/json")
        self.assertEqual(fields["etag"], '"1"')
        self.assertNotIn("connection", fields)  # HTTP/1.1: kept open unless told
        for name in ("server", "x-request-id", "x-content-type-options", "referrer-policy", "x-frame-options",
                     "cache-control"):
            self.assertIn(name, fields)
        # HEAD: the GET's fields and Content-Length, no body (the next answer on the connection is intact).
        head = get.replace(b"GET ", b"HEAD ", 1)
        (hline, hfields, hbody), (gline, _, gbody) = self.raw_exchange(head + get, 2, heads=(0,))
        self.assertEqual((hline, hbody), ("HTTP/1.1 200 OK", b""))
        self.assertEqual(int(hfields["content-length"]), len(body))
        self.assertEqual((gline, json.loads(gbody)["id"]), ("HTTP/1.1 200 OK", t["id"]))
        # Three requests pipelined on one connection: three answers in order.
        answers = self.raw_exchange(get + b"GET /livez HTTP/1.1\r\nHost: x\r\n" + auth +
                                    b"\r\n" + get, 3)
        self.assertEqual([a[0] for a in answers], ["HTTP/1.1 200 OK"] * 3)
        self.assertEqual(json.loads(answers[2][2])["id"], t["id"])
        # HTTP/1.0: closed unless keep-alive is asked for, and then said so.
        [(line, fields, _)] = self.raw_exchange(get.replace(b"HTTP/1.1", b"HTTP/1.0"), 1)
        self.assertEqual(line, "HTTP/1.0 200 OK")
        self.assertNotIn("keep-alive", fields.get("connection", ""))
        ka = get.replace(b"HTTP/1.1", b"HTTP/1.0").replace(b"Host: x\r\n", b"Host: x\r\nConnection: keep-alive\r\n")
        first, second = self.raw_exchange(ka + ka, 2)
        self.assertEqual(first[1]["connection"], "keep-alive")
        self.assertEqual(second[0], "HTTP/1.0 200 OK")
        # HTTP/1.1 with Connection: close: said back, then closed.
        [(_, fields, _)] = self.raw_exchange(get.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"), 1)
        self.assertEqual(fields["connection"], "close")
        # 204 (a CORS preflight): no Content-Length, no body, and the connection goes on.
        pre = (b"OPTIONS /v1/tenants HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n"
               b"Access-Control-Request-Method: POST\r\n\r\n")
        (line, fields, body), (after, _, _) = self.raw_exchange(pre + get, 2)
        self.assertEqual((line, body), ("HTTP/1.1 204 No Content", b""))
        self.assertNotIn("content-length", fields)
        self.assertEqual(fields["access-control-allow-origin"], "https://app.example.com")
        self.assertEqual(after, "HTTP/1.1 200 OK")
        # A problem answer: its own status line and media type.
        [(line, fields, body)] = self.raw_exchange(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 1)
        self.assertEqual(line, "HTTP/1.1 404 Not Found")
        self.assertEqual(fields["content-type"], "application/problem+json")
        self.assertEqual(json.loads(body)["status"], 404)

    def test_crash_answers_500_with_request_id_and_entity_recovers(self):
        n = self.node
        t = self.tenant()
        doc = self.assertProblem(n.json("GET", f"/v1/tenants/{t['id']}", headers={"X-Colony-Fault": "crash", "X-Request-Id": "crash-req-1"}), 500, "internal-error")
        self.assertEqual(doc["requestId"], "crash-req-1")
        self.assertIn("crash-req-1", doc["detail"])
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}")[0], 200)
        metrics = n.request("GET", "/metrics")[2].decode()
        crashes = [l for l in metrics.splitlines() if l.startswith('colony_actor_crashes_total{kind="tenant"}')]
        self.assertTrue(crashes and float(crashes[0].split()[-1]) >= 1, crashes)

    def test_operational_endpoints(self):
        n = self.node
        self.assertEqual(n.request("GET", "/livez")[0], 200)
        status, _, body = n.request("GET", "/readyz?verbose")
        self.assertEqual(status, 200)
        self.assertIn(b"[+]store", body)
        status, hdrs, body = n.request("GET", "/metrics")
        self.assertEqual(status, 200)
        text = body.decode()
        for name in ("colony_http_requests_total", "colony_http_request_duration_seconds_bucket",
                     "colony_entities_live", "colony_entity_activations_total", "colony_entity_passivations_total",
                     "colony_actor_crashes_total", "colony_store_commit_duration_seconds", "colony_store_commit_batch_size"):
            self.assertIn(name, text)
        self.assertIn('route="/v1/tenants"', text)
        status, _, doc = n.json("GET", "/openapi.json")
        self.assertEqual(status, 200)
        self.assertTrue(doc["openapi"].startswith("3.1"))
        status, hdrs, _ = n.request("GET", "/livez", headers={"X-Request-Id": "abc-123"})
        self.assertEqual(hdrs["X-Request-Id"], "abc-123")
        self.assertEqual(hdrs["X-Content-Type-Options"], "nosniff")
        deadline = time.time() + 5  # the access line is written right after the answer is sent
        while "request_id=abc-123" not in n.logs() and time.time() < deadline:
            time.sleep(0.02)
        self.assertIn("request_id=abc-123", n.logs())


class Receiver:
    """A webhook receiver on loopback that checks Colony-Signature with Python's hmac.
    mode: "ok" (204), "fail" (500), "slow" (answers after 8 s)."""

    def __init__(self, mode="ok", tls=None):
        self.mode = mode
        self.received = []   # (event dict, headers, signature valid)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((json.loads(body), dict(self.headers), outer.verify(self.headers, body)))
                if outer.mode == "slow":
                    time.sleep(8)
                code = 500 if outer.mode == "fail" else 204
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:  # (cert, key): serve https on "localhost"
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.server.server_address[1]}/hook"
        else:
            self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.secret = None
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, headers, body):
        parts = dict(p.split("=", 1) for p in headers.get("Colony-Signature", "").split(","))
        if self.secret is None or abs(int(parts["t"]) - time.time()) > 300:
            return False
        expected = hmac.new(self.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Webhooks(unittest.TestCase):
    ARGS = ["--webhooks.retry-base", "100ms", "--webhooks.max-attempts", "3", "--webhooks.timeout", "6s"]

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="colony-e2e-wh-")
        # A private CA the node is told to trust, and a certificate it must refuse (wrong name).
        self.cert = self.make_cert("localhost")
        self.wrong = self.make_cert("elsewhere.example")
        self.node = Node(self.dir, self.ARGS + ["--webhooks.ca-file", self.cert[0]])
        self.receivers = []

    def make_cert(self, name):
        cert, key = os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name],
                       check=True, capture_output=True)
        return cert, key

    def tearDown(self):
        if self.node.proc.poll() is None:
            self.node.stop()
        for r in self.receivers:
            r.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def receiver(self, mode="ok", tls=None):
        r = Receiver(mode, tls)
        self.receivers.append(r)
        return r

    def tenant(self):
        status, _, t = self.node.json("POST", "/v1/tenants", {"slug": "wh-" + uuid.uuid4().hex[:8], "name": "W"})
        self.assertEqual(status, 201)
        return t

    def register(self, t, r, types=None):
        body = {"url": r.url, "description": "test"}
        if types is not None:
            body["eventTypes"] = types
        status, hdrs, w = self.node.json("POST", f"/v1/tenants/{t['id']}/webhooks", body)
        self.assertEqual(status, 201, w)
        self.assertTrue(w["secret"].startswith("whsec_"))
        r.secret = w["secret"]
        return w

    def deliveries(self, t, w):
        status, _, doc = self.node.json("GET", f"/v1/tenants/{t['id']}/webhooks/{w['id']}/deliveries")
        self.assertEqual(status, 200, doc)
        return doc["data"]

    def wait(self, predicate, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        self.fail("condition not met within %s s" % timeout)

    def test_signed_deliveries_of_matching_events_and_endpoint_management(self):
        n = self.node
        t = self.tenant()
        good = self.receiver()
        w = self.register(t, good, ["user.*"])
        everything = self.receiver()
        w_all = self.register(t, everything)
        status, _, u = n.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "hook@example.com"})
        self.assertEqual(status, 201)
        self.assertEqual(n.json("PATCH", f"/v1/tenants/{t['id']}", {"name": "W2"})[0], 200)
        self.wait(lambda: len(good.received) == 1 and len(everything.received) == 2)
        event, headers, valid = good.received[0]
        self.assertTrue(valid)
        self.assertEqual(event["type"], "user.created")
        self.assertEqual(event["userChanged"]["state"]["id"], u["id"])
        self.assertEqual(headers["Colony-Event-Type"], "user.created")
        self.assertEqual(headers["Colony-Event-Id"], event["id"])
        self.assertEqual(sorted(e["type"] for e, _, _ in everything.received), ["tenant.updated", "user.created"])
        self.assertTrue(all(v for _, _, v in everything.received))
        self.wait(lambda: [d["status"] for d in self.deliveries(t, w)] == ["delivered"])
        d = self.deliveries(t, w)[0]
        self.assertEqual((d["attempts"], d["lastStatus"], d["eventType"]), (1, 204, "user.created"))

        listed = n.json("GET", f"/v1/tenants/{t['id']}/webhooks")[2]["data"]
        self.assertEqual({x["id"] for x in listed}, {w["id"], w_all["id"]})
        self.assertTrue(all("secret" not in x for x in listed))
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}/webhooks/{w['id']}")[2]["eventTypes"], ["user.*"])
        self.assertEqual(n.json("DELETE", f"/v1/tenants/{t['id']}/webhooks/{w['id']}")[0], 204)
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}/webhooks/{w['id']}")[0], 404)
        self.assertEqual(n.json("DELETE", f"/v1/tenants/{t['id']}/webhooks/{w['id']}")[0], 404)
        # Another tenant's id does not reach this endpoint.
        other = self.tenant()
        self.assertEqual(n.json("GET", f"/v1/tenants/{other['id']}/webhooks/{w_all['id']}")[0], 404)

        for bad in ({"url": "ftp://x"}, {"url": "https://"}, {}, {"url": good.url, "eventTypes": "x"},
                    {"url": good.url, "eventTypes": ["User Created"]}, {"url": good.url, "colour": 1}):
            status, hdrs, doc = n.json("POST", f"/v1/tenants/{t['id']}/webhooks", bad)
            self.assertEqual(status, 400, (bad, doc))
            self.assertEqual(hdrs["Content-Type"], "application/problem+json")
        self.assertEqual(n.json("POST", f"/v1/tenants/{uuid.uuid4()}/webhooks", {"url": good.url})[0], 404)

    def test_failing_endpoint_is_retried_then_dead_lettered_while_others_are_not_delayed(self):
        n = self.node
        t = self.tenant()
        failing, slow, good = self.receiver("fail"), self.receiver("slow"), self.receiver()
        w_fail = self.register(t, failing)
        self.register(t, slow)
        self.register(t, good)
        started = time.time()
        self.assertEqual(n.json("POST", f"/v1/tenants/{t['id']}/activate")[0], 200)
        self.wait(lambda: len(good.received) == 1, timeout=10)
        # Not queued behind the slow endpoint, which holds its attempt for the whole 6 s timeout.
        self.assertLess(time.time() - started, 5)
        self.wait(lambda: len(slow.received) == 1)  # the slow endpoint was tried too (concurrently)
        self.wait(lambda: [d["status"] for d in self.deliveries(t, w_fail)] == ["dead"])
        d = self.deliveries(t, w_fail)[0]
        self.assertEqual((d["attempts"], d["lastStatus"]), (3, 500))
        self.assertEqual(len(failing.received), 3)
        dead = n.json("GET", f"/v1/tenants/{t['id']}/webhooks/{w_fail['id']}/deliveries?status=dead")[2]["data"]
        self.assertEqual([x["id"] for x in dead], [d["id"]])
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}/webhooks/{w_fail['id']}/deliveries?status=pending")[2]["data"], [])

    def test_https_endpoints_are_verified(self):
        n = self.node
        t = self.tenant()
        good = self.receiver(tls=self.cert)
        w_good = self.register(t, good)
        impostor = self.receiver(tls=self.wrong)  # trusted? no: not signed by a trusted CA, wrong name
        w_bad = self.register(t, impostor)
        self.assertEqual(n.json("POST", f"/v1/tenants/{t['id']}/activate")[0], 200)
        self.wait(lambda: len(good.received) == 1)
        self.assertTrue(good.received[0][2])
        self.wait(lambda: [d["status"] for d in self.deliveries(t, w_bad)] == ["dead"])
        self.assertIn("TLS handshake failed", self.deliveries(t, w_bad)[0]["lastError"])
        self.assertEqual(impostor.received, [])
        self.assertEqual([d["status"] for d in self.deliveries(t, w_good)], ["delivered"])

    def test_a_restart_in_the_middle_loses_no_delivery(self):
        n = self.node
        t = self.tenant()
        r = self.receiver("fail")
        w = self.register(t, r)
        for i in range(3):
            self.assertEqual(n.json("PATCH", f"/v1/tenants/{t['id']}", {"name": f"R{i}"})[0], 200)
        self.wait(lambda: len(r.received) >= 3)  # each tried at least once, all failed
        self.assertEqual(n.stop()[0], 0)
        r.mode = "ok"
        self.node = Node(self.dir, self.ARGS + ["--webhooks.ca-file", self.cert[0]])
        self.wait(lambda: sorted(d["status"] for d in self.deliveries(t, w)) == ["delivered"] * 3)
        ok_ids = {e["id"] for e, _, _ in r.received}
        self.assertEqual(len(ok_ids), 3)


class Restart(unittest.TestCase):
    def test_acknowledged_writes_survive_a_restart(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-restart-")
        try:
            node = Node(d, ["--log-format", "json"])
            slug = "rs-" + uuid.uuid4().hex[:8]
            status, _, t = node.json("POST", "/v1/tenants", {"slug": slug, "name": "Restart", "plan": "pro"})
            self.assertEqual(status, 201)
            users = []
            for i in range(50):
                status, _, u = node.json("POST", f"/v1/tenants/{t['id']}/users", {"email": f"r{i}@example.com"})
                self.assertEqual(status, 201)
                users.append(u)
            node.json("PATCH", f"/v1/tenants/{t['id']}/users/{users[0]['id']}", {"name": "Patched"})
            node.json("POST", f"/v1/tenants/{t['id']}/activate")
            code, took = node.stop()
            self.assertEqual(code, 0)
            self.assertLess(took, 10)
            first_lines = [json.loads(l) for l in node.logs().splitlines()[:3]]
            self.assertEqual(first_lines[0]["msg"], "colonyd starting")
            self.assertIn("version", first_lines[0])
            self.assertIn("store", first_lines[0])

            again = Node(d)
            status, _, t2 = again.json("GET", "/v1/tenants/" + slug)
            self.assertEqual((status, t2["status"], t2["usage"]["users"]), (200, "active", 50))
            self.assertEqual(again.json("GET", f"/v1/tenants/{t['id']}/users/{users[0]['id']}")[2]["name"], "Patched")
            listed = again.json("GET", f"/v1/tenants/{t['id']}/users?limit=500")[2]["data"]
            self.assertEqual(len(listed), 50)
            self.assertEqual(again.stop()[0], 0)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_a_trial_that_expired_while_the_node_was_down_is_suspended_at_start(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-")
        try:
            n = Node(d, ["--timers.poll-interval", "100ms"])
            status, _, t = n.json("POST", "/v1/tenants", {"slug": "exp-" + uuid.uuid4().hex[:8], "name": "E"})
            self.assertEqual(status, 201)
            soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 2)) + "Z"
            self.assertEqual(n.json("PATCH", f"/v1/tenants/{t['id']}", {"trialEndsAt": soon})[0], 200)
            self.assertEqual(n.stop()[0], 0)
            time.sleep(3)  # the trial ends while no node runs
            n2 = Node(d, ["--timers.poll-interval", "100ms"])
            deadline = time.time() + 10
            while time.time() < deadline:
                cur = n2.json("GET", f"/v1/tenants/{t['id']}")[2]
                if cur["status"] == "suspended":
                    break
                time.sleep(0.05)
            self.assertEqual((cur["status"], cur["statusReason"]), ("suspended", "trial_expired"))
            self.assertEqual(n2.stop()[0], 0)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_invalid_configuration_exits_2_naming_the_option(self):
        r = subprocess.run([COLONYD, "--http.body-limit", "huge"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("http.body-limit", r.stderr)
        r = subprocess.run([COLONYD, "--http.cors-origins", "https://ok.example,app.example.com/path"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("http.cors-origins", r.stderr)
        self.assertIn("app.example.com/path", r.stderr)
        conf = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config", "colony.conf")
        r = subprocess.run([COLONYD, "--config", conf, "--dump-config"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)  # the shipped, documented file is valid
        self.assertIn('listen = "127.0.0.1:8080"', r.stdout)
        self.assertIn("free = { max-users = 5", r.stdout)
        r = subprocess.run([COLONYD, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--store", r.stdout)


class Tls(unittest.TestCase):
    """--tls-cert/--tls-key: HTTPS only, TLS 1.2 and newer, HSTS on every answer."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-tls-")
        cls.cert, cls.key = os.path.join(cls.dir, "node.pem"), os.path.join(cls.dir, "node.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", cls.key, "-out", cls.cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        cls.node = Node(cls.dir, ["--tls-cert", cls.cert, "--tls-key", cls.key], tls_ca=cls.cert)

    @classmethod
    def tearDownClass(cls):
        code, _ = cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert code == 0, code

    def s_client(self, *args):
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.node.port}", "-CAfile", self.cert,
                               *args], input="", capture_output=True, text=True, timeout=20)

    def test_https_with_hsts_and_the_api_behind_it(self):
        status, hdrs, _ = self.node.request("GET", "/livez")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Strict-Transport-Security"], "max-age=31536000")
        status, _, t = self.node.json("POST", "/v1/tenants", {"slug": "tls-" + uuid.uuid4().hex[:8], "name": "TLS"})
        self.assertEqual(status, 201, t)
        self.assertIn("https", self.node.logs())

    def test_plain_http_and_old_protocols_are_refused(self):
        with socket.create_connection(("127.0.0.1", self.node.port), timeout=10) as s:
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                answer = s.recv(4096)
            except ConnectionResetError:
                answer = b""
            self.assertNotIn(b"HTTP/1.1 200", answer)
        self.assertEqual(self.s_client("-tls1_2").returncode, 0)
        old = self.s_client("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
        self.assertNotEqual(old.returncode, 0, old.stdout)
        self.assertEqual(self.node.request("GET", "/livez")[0], 200)  # still serving

    def test_a_bad_certificate_or_key_stops_the_start_naming_the_option(self):
        r = subprocess.run([COLONYD, "--listen", "127.0.0.1:0", "--data-dir", self.dir + "/bad", "--tls-cert",
                            self.dir + "/missing.pem", "--tls-key", self.key], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("tls-cert", r.stderr)
        other_key = os.path.join(self.dir, "other.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
                        other_key], check=True, capture_output=True)
        r = subprocess.run([COLONYD, "--listen", "127.0.0.1:0", "--data-dir", self.dir + "/bad2", "--tls-cert",
                            self.cert, "--tls-key", other_key], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("tls-key", r.stderr)
        self.assertIn("mismatch", r.stderr)


class SlowEntity(unittest.TestCase):
    """http.request-timeout for an entity that does not answer: the bridge's own deadline."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-slow-")
        cls.node = Node(cls.dir, ["--request-timeout", "1s", "--debug.fault-injection", "true"])

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_an_entity_that_does_not_answer_in_time_gets_503_and_its_late_answer_is_dropped(self):
        slug = "slow-" + uuid.uuid4().hex[:8]
        status, _, t = self.node.json("POST", "/v1/tenants", {"slug": slug, "name": "Slow", "plan": "free"})
        self.assertEqual(status, 201, t)
        status, _, u = self.node.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "slow@example.com", "name": "S"})
        self.assertEqual(status, 201, u)
        auth = {"Authorization": "Bearer " + self.node.admin_key}
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        started = time.time()
        conn.request("GET", f"/v1/tenants/{t['id']}/users/{u['id']}", headers=dict(auth, **{"X-Colony-Fault": "stall=2500"}))
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        waited = time.time() - started
        self.assertEqual(resp.status, 503, doc)
        self.assertTrue(doc["type"].endswith("/unavailable"), doc)
        self.assertIn("did not answer in time", doc["detail"])
        self.assertGreater(waited, 0.9)
        self.assertLess(waited, 2.0)  # the bridge's deadline, not the entity's 2.5 s
        time.sleep(2.0)  # the entity answers meanwhile; that answer must not reach this connection
        conn.request("GET", "/livez", headers=auth)
        resp = conn.getresponse()
        body = resp.read()
        self.assertEqual(resp.status, 200, body)
        self.assertNotIn(b"slow@example.com", body)  # a late user answer written here would be read as this one
        conn.request("GET", f"/v1/tenants/{t['id']}/users/{u['id']}", headers=auth)
        resp = conn.getresponse()
        body = json.loads(resp.read())
        self.assertEqual((resp.status, body["id"]), (200, u["id"]))
        conn.close()


class ShutdownWithARequestHeld(unittest.TestCase):
    """SIGTERM while an entity still holds a request past the shutdown timeout:
    the node exits 0 and in time. The actor side then still owns that
    connection when the HTTP server stops (under AddressSanitizer, releasing
    it after the io_context was gone was a heap-use-after-free)."""

    def test_sigterm_with_a_request_held_by_a_stalled_entity_exits_cleanly(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-held-")
        try:
            node = Node(d, ["--request-timeout", "10s", "--shutdown-timeout", "300ms", "--debug.fault-injection", "true"])
            status, _, t = node.json("POST", "/v1/tenants", {"slug": "held-" + uuid.uuid4().hex[:8], "name": "H"})
            self.assertEqual(status, 201, t)
            status, _, u = node.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "held@example.com", "name": "H"})
            self.assertEqual(status, 201, u)
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
            conn.request("GET", f"/v1/tenants/{t['id']}/users/{u['id']}",
                         headers={"Authorization": "Bearer " + node.admin_key, "X-Colony-Fault": "stall=1500"})
            time.sleep(0.3)  # the entity is stalled with the request in hand
            code, took = node.stop()
            conn.close()
            self.assertEqual(code, 0, node.logs()[-4000:])
            self.assertLess(took, 8.0)
            self.assertIn("requests still in flight at the shutdown deadline", node.logs())
        finally:
            shutil.rmtree(d, ignore_errors=True)


class SlowAndManyClients(unittest.TestCase):
    """http.read-timeout, http.idle-timeout and http.max-connections, on a node of their own."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-limits-")
        cls.node = Node(cls.dir, ["--http.read-timeout", "1s", "--http.idle-timeout", "1s",
                                  "--http.max-connections", "3", "--http.max-in-flight", "2",
                                  "--debug.fault-injection", "true"])
        cls.node.conn.close()  # the readiness probe's connection must not count against the limit
        cls.node.conn = None

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def closed_by_server_within(self, sock, seconds):
        sock.settimeout(seconds)
        try:
            return sock.recv(4096) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def test_a_client_that_stalls_mid_request_is_cut_off_after_the_read_timeout(self):
        with socket.create_connection(("127.0.0.1", self.node.port)) as s:
            s.sendall(b"GET /livez HTTP/1.1\r\nHo")
            started = time.time()
            self.assertTrue(self.closed_by_server_within(s, 5))
            self.assertLess(time.time() - started, 3)

    def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(self):
        with socket.create_connection(("127.0.0.1", self.node.port)) as s:
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            self.assertIn(b" 200 ", s.recv(4096))
            started = time.time()
            self.assertTrue(self.closed_by_server_within(s, 5))
            self.assertGreater(time.time() - started, 0.5)

    def test_requests_beyond_max_in_flight_get_503_overloaded_then_are_served_again(self):
        """Overload protection: with http.max-in-flight (2) requests waiting for their answers
        (held here by the test-only delay fault), the next one is answered 503 at once."""
        results = []

        def slow():
            conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
            conn.request("GET", "/livez", headers={"X-Colony-Fault": "delay=1500"})
            results.append(conn.getresponse().status)
            conn.close()
        held = [threading.Thread(target=slow) for _ in range(2)]
        for t in held:
            t.start()
        time.sleep(0.4)
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        started = time.time()
        conn.request("GET", "/livez")
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        conn.close()
        self.assertEqual(resp.status, 503)
        self.assertLess(time.time() - started, 0.5)  # turned away, not queued
        self.assertEqual(resp.getheader("Retry-After"), "1")
        self.assertEqual(doc["type"], "https://colony.dev/problems/overloaded")
        for t in held:
            t.join()
        self.assertEqual(results, [200, 200])
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=10)
        conn.request("GET", "/livez")
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()

    def test_connections_beyond_the_limit_are_refused_and_served_again_later(self):
        held = [socket.create_connection(("127.0.0.1", self.node.port)) for _ in range(3)]
        try:
            time.sleep(0.2)  # accepted
            extra = socket.create_connection(("127.0.0.1", self.node.port))
            self.assertTrue(self.closed_by_server_within(extra, 0.9))  # before the held ones time out
            extra.close()
        finally:
            for s in held:
                s.close()
        deadline = time.time() + 5
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=5)
                conn.request("GET", "/livez")
                self.assertEqual(conn.getresponse().status, 200)
                conn.close()
                break
            except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
                if time.time() > deadline:
                    raise
                time.sleep(0.1)


class DatabaseOutage(unittest.TestCase):
    """The server goes away: readiness says so, writes get 503, then it all recovers."""

    def pg_ctl(self, *args):
        state = os.path.dirname(os.environ["COLONY_TEST_PG_DSN_FILE"])
        with open(os.path.join(state, "datadir")) as f:
            data = f.read().strip()
        with open(os.path.join(state, "port")) as f:
            port = f.read().strip()
        cmd = ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", data + "/db", "-w", *args]
        if args[0] == "start":
            cmd += ["-l", data + "/server.log", "-o",
                    f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data}"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def test_store_outage_and_recovery(self):
        d = tempfile.mkdtemp(prefix="colony-e2e-outage-")
        node = Node(d)
        try:
            self.pg_ctl("stop", "-m", "fast")
            try:
                deadline = time.time() + 10
                while node.request("GET", "/readyz")[0] != 503 and time.time() < deadline:
                    time.sleep(0.05)
                status, _, body = node.request("GET", "/readyz?verbose")
                self.assertEqual(status, 503)
                self.assertIn(b"[-]store", body)
                status, hdrs, payload = node.request("POST", "/v1/tenants", {"slug": "outage-" + uuid.uuid4().hex[:6], "name": "x"})
                self.assertEqual(status, 503, payload)
                self.assertIn("Retry-After", hdrs)
            finally:
                self.pg_ctl("start")
            deadline = time.time() + 20
            while node.request("GET", "/readyz")[0] != 200 and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(node.request("GET", "/readyz")[0], 200)
            status, _, payload = node.request("POST", "/v1/tenants", {"slug": "back-" + uuid.uuid4().hex[:6], "name": "x"})
            self.assertEqual(status, 201, payload)
        finally:
            self.assertEqual(node.stop()[0], 0)
            shutil.rmtree(d, ignore_errors=True)

    def test_sigterm_with_answers_still_pending_for_vanished_clients_exits_promptly(self):
        """Requests wait on a locked table, their clients hang up, SIGTERM comes: the answers that
        arrive afterwards are still written (to closed sockets), so the drain ends as soon as the
        lock goes, not at the shutdown timeout (the io threads used to run out of work and stop)."""
        d = tempfile.mkdtemp(prefix="colony-e2e-sigterm-")
        node = Node(d, ["--shutdown-timeout", "10s"])
        with open(os.environ["COLONY_TEST_PG_DSN_FILE"]) as f:
            dsn = f.read().strip()
        locker = None
        try:
            status, _, t = node.json("POST", "/v1/tenants", {"slug": "sig-" + uuid.uuid4().hex[:8], "name": "x"})
            self.assertEqual(status, 201)
            locker = subprocess.Popen(["psql", dsn, "-Atq", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            locker.stdin.write("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
            locker.stdin.flush()
            self.assertEqual(locker.stdout.readline().strip(), "locked")
            socks = []
            for i in range(16):
                s = socket.create_connection(("127.0.0.1", node.port))
                body = json.dumps({"email": f"gone{i}@example.com"})
                s.sendall(f"POST /v1/tenants/{t['id']}/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          f"Authorization: Bearer {node.admin_key}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
                socks.append(s)
            node.conn.close()  # no idle keep-alive connection either: nothing else keeps the server busy
            node.conn = None
            time.sleep(0.3)  # parsed and waiting on the lock
            for s in socks:
                s.close()
            node.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            locker.stdin.write("COMMIT;\n")
            locker.stdin.close()
            locker.wait(timeout=10)
            started = time.time()
            code = node.proc.wait(timeout=15)
            self.assertEqual(code, 0)
            self.assertLess(time.time() - started, 5, node.logs())
            self.assertNotIn("still in flight", node.logs())
        finally:
            if locker and locker.poll() is None:
                locker.kill()
            if node.proc.poll() is None:
                node.stop()
            shutil.rmtree(d, ignore_errors=True)


if STORE_KIND != "postgres":
    del DatabaseOutage  # needs the PostgreSQL fixture: it runs in the e2e_postgres test


if __name__ == "__main__":
    unittest.main(verbosity=2)
