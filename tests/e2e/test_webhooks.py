#!/usr/bin/env python3
"""End-to-end tests of outbound webhooks: signed deliveries to receivers on
loopback, retries and dead letters, TLS to the receiver, event filters.

Environment: see colony_testkit/env.py.
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

from colony_testkit import Node, Receiver, wait_until


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
        wait_until(predicate, timeout)

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
