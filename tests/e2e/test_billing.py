#!/usr/bin/env python3
"""End-to-end tests of billing: Stripe webhooks drive the tenant lifecycle; bad
signatures change nothing, on one node of the store under test
(colony_testkit.api_case).

Environment: COLONYD, COLONY_TEST_STORE (sqlite|postgres), COLONY_TEST_PG_DSN_FILE.
"""
import json
import time
import unittest
import uuid

from colony_testkit import NodeCase, stripe_headers


class Billing(NodeCase):
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
