#!/usr/bin/env python3
"""End-to-end tests of the event feed: every change an event, in commit order, on
one node of the store under test (colony_testkit.api_case).

Environment: COLONYD, COLONY_TEST_STORE (sqlite|postgres), COLONY_TEST_PG_DSN_FILE.
"""
import json
import unittest
import uuid

from colony_testkit import NodeCase


class Events(NodeCase):
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
