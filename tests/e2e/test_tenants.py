#!/usr/bin/env python3
"""End-to-end tests of tenants: create, read, patch, lifecycle, lists, plans and
the trial timer, on one node of the store under test
(colony_testkit.api_case).

Environment: COLONYD, COLONY_TEST_STORE (sqlite|postgres), COLONY_TEST_PG_DSN_FILE.
"""
import time
import unittest
import uuid

from colony_testkit import NodeCase


class Tenants(NodeCase):
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

    def test_plan_below_usage_is_refused(self):
        n = self.node
        t = self.tenant(plan="starter")
        for i in range(6):
            self.assertEqual(n.json("POST", f"/v1/tenants/{t['id']}/users", {"email": f"p{i}@example.com"})[0], 201)
        doc = self.assertProblem(n.json("PATCH", f"/v1/tenants/{t['id']}", {"plan": "free"}), 409, "plan-below-usage")
        self.assertIn("6", doc["detail"])
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}")[2]["plan"], "starter")


if __name__ == "__main__":
    unittest.main(verbosity=2)
