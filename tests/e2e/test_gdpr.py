#!/usr/bin/env python3
"""End-to-end tests of GDPR: export, then erasure from state, events, deliveries
and audit, on one node of the store under test (colony_testkit.api_case).

Environment: COLONYD, COLONY_TEST_STORE (sqlite|postgres), COLONY_TEST_PG_DSN_FILE.
"""
import json
import os
import time
import unittest
import uuid

from colony_testkit import NodeCase, STORE_KIND


class Gdpr(NodeCase):
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
