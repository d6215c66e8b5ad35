"""The base of the per-resource e2e files: one node per test class and the
assertions every resource test uses."""
import shutil
import tempfile
import unittest
import uuid

from .env import STRIPE_SECRET
from .node import Node


class NodeCase(unittest.TestCase):
    """One node per test class, with the switches the resource tests use
    (fault injection, Stripe, a short payment grace and timer poll, CORS)."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-")
        cls.node = Node(cls.dir, ["--debug.fault-injection", "true", "--stripe-webhook-secret", STRIPE_SECRET,
                                  "--billing.payment-grace", "1s", "--timers.poll-interval", "200ms",
                                  "--http.cors-origins", "https://app.example.com,http://localhost:3000",
                                  "--plugins.fault-threshold", "3", "--plugins.event-attempts", "3",
                                  "--plugins.event-poll", "50ms", "--plugins.kv-quota", "8KiB",
                                  "--plugins.inline-time", "0ms"])  # every hook step on the plugin threads

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
