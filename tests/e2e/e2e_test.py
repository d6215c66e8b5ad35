#!/usr/bin/env python3
"""End-to-end tests of the API's resources on one node (tenants, users, keys,
events, billing, CORS, limits): start colonyd, drive it over HTTP with http.client.

Environment: COLONYD (path to the binary), COLONY_TEST_STORE (sqlite|postgres),
COLONY_TEST_PG_DSN_FILE (for postgres, written by tests/support/pg_fixture.sh).
"""
import http.client
import json
import os
import shutil
import socket
import tempfile
import time
import unittest
import uuid

from colony_testkit import STORE_KIND, STRIPE_SECRET, Node, stripe_headers


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
