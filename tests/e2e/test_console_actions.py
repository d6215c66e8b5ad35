#!/usr/bin/env python3
"""The console's operator actions against real nodes (docs/console.md,
"Operator actions"): who may take them (platform_operator, not
platform_admin alone), the console.operator-actions switch, passivating an
actor (gone, reloaded by its next command, busy while work is on its way,
not live), draining on a node that runs alone, the session cookie from the
console's own origin only, colonyctl, and the audit record of every attempt.

Environment: colony_testkit/env.py; COLONYCTL names the CLI (default next to
COLONYD)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from colony_testkit import AUDIENCE, COLONYD, ISSUER, SECRET, Node, token  # noqa: E402

COLONYCTL = os.environ.get("COLONYCTL", os.path.join(os.path.dirname(COLONYD), "colonyctl"))
JWT = ["--auth-jwt-hs256-secret", SECRET, "--auth-issuer", ISSUER, "--auth-audience", AUDIENCE]
ROOT = token(roles=["platform_admin"], sub="the-admin")
OPERATOR = token(roles=["platform_operator"], sub="the-operator")


class OperatorActions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-actions-")
        os.makedirs(os.path.join(cls.dir, "on"))
        os.makedirs(os.path.join(cls.dir, "off"))
        cls.node = Node(os.path.join(cls.dir, "on"),
                        [*JWT, "--console.operator-actions", "true", "--debug.fault-injection", "true"])
        cls.off = Node(os.path.join(cls.dir, "off"), JWT)

    @classmethod
    def tearDownClass(cls):
        codes = [cls.node.stop()[0], cls.off.stop()[0]]
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert codes == [0, 0], codes

    def user(self, node=None):
        node = node or self.node
        status, _, t = node.json("POST", "/v1/tenants", {"slug": "oa-" + uuid.uuid4().hex[:10], "name": "T"},
                                 auth=ROOT)
        self.assertEqual(status, 201, t)
        status, _, u = node.json("POST", f"/v1/tenants/{t['id']}/users",
                                 {"email": f"{uuid.uuid4().hex[:8]}@example.com", "name": "Op"}, auth=ROOT)
        self.assertEqual(status, 201, u)
        return t["id"], u["id"]

    def actor(self, tid, uid, node=None):
        status, _, doc = (node or self.node).json("GET", f"/v1/admin/actors/user/{uid}?tenantId={tid}", auth=OPERATOR)
        self.assertEqual(status, 200, doc)
        return doc

    def passivate(self, tid, uid, auth=OPERATOR, node=None, headers=None):
        return (node or self.node).json("POST", f"/v1/admin/actors/user/{uid}/passivate?tenantId={tid}",
                                        auth=auth, headers=headers)

    def problem(self, resp, status, kind):
        code, hdrs, doc = resp
        self.assertEqual(code, status, doc)
        self.assertEqual(hdrs.get("Content-Type"), "application/problem+json")
        self.assertTrue(doc["type"].endswith("/" + kind), doc)
        return doc

    def audit(self, node, want, timeout=5):
        """The platform audit records of operator actions, once `want(records)` holds (written within 200 ms)."""
        deadline = time.time() + timeout
        while True:
            status, _, doc = node.json("GET", "/v1/audit-log?limit=200", auth=ROOT)
            self.assertEqual(status, 200, doc)
            records = [r for r in doc["data"] if r["action"] in ("actor.passivate", "node.drain", "node.undrain")]
            if want(records) or time.time() > deadline:
                return records

    def test_who_may_act_and_the_switch(self):
        tid, uid = self.user()
        self.assertTrue(self.actor(tid, uid)["live"])
        # platform_admin alone watches but does not act; a tenant's owner neither.
        self.problem(self.passivate(tid, uid, auth=ROOT), 403, "forbidden")
        self.problem(self.passivate(tid, uid, auth=token(tenant=tid, roles=["owner"])), 403, "forbidden")
        self.assertEqual(self.passivate(tid, uid, auth=False)[0], 401)
        self.assertTrue(self.actor(tid, uid)["live"])
        # The operator watches (the admin API, the cluster view) but may not run the platform.
        for path in ("/v1/admin/nodes", "/v1/admin/actors?top=3", "/v1/admin/mailboxes", "/v1/cluster"):
            self.assertEqual(self.node.json("GET", path, auth=OPERATOR)[0], 200, path)
        self.problem(self.node.json("GET", "/v1/tenants", auth=OPERATOR), 403, "forbidden")
        self.problem(self.node.json("POST", "/v1/tenants", {"slug": "nope-op", "name": "N"}, auth=OPERATOR), 403,
                     "forbidden")
        # A node whose switch is off refuses the operator too, and says which switch.
        otid, ouid = self.user(self.off)
        doc = self.problem(self.passivate(otid, ouid, node=self.off), 403, "operator-actions-disabled")
        self.assertIn("console.operator-actions", doc["detail"])
        self.assertTrue(self.actor(otid, ouid, node=self.off)["live"])
        self.problem(self.off.json("POST", "/v1/admin/nodes/any/drain", auth=OPERATOR), 403,
                     "operator-actions-disabled")
        denied = self.audit(self.off, lambda rs: len(rs) >= 2)
        self.assertEqual(sorted((r["action"], r["outcome"], r["status"]) for r in denied),
                         [("actor.passivate", "denied", 403), ("node.drain", "denied", 403)])
        self.assertEqual({r["actor"] for r in denied}, {f"jwt:{ISSUER}#the-operator"})
        # What the console's session says the page may offer.
        for node, cred, want in ((self.node, OPERATOR, True), (self.node, ROOT, False), (self.off, OPERATOR, False)):
            status, hdrs, _ = node.request("POST", "/console/session", {"token": cred}, auth=False)
            self.assertEqual(status, 204)
            cookie = hdrs["Set-Cookie"].split(";")[0]
            status, _, s = node.json("GET", "/console/session", headers={"Cookie": cookie}, auth=False)
            self.assertEqual((status, s["signedIn"], s["operatorActions"]), (200, True, want), s)

    def test_passivate(self):
        tid, uid = self.user()
        before = self.actor(tid, uid)
        self.assertTrue(before["live"])
        status, _, done = self.passivate(tid, uid)
        self.assertEqual(status, 200, done)
        self.assertEqual(done, {"kind": "user", "id": uid, "tenantId": tid, "node": before["node"],
                                "passivated": True})
        gone = self.actor(tid, uid)
        self.assertFalse(gone["live"])
        self.assertEqual([e["event"] for e in gone["lifecycle"]], ["passivated"], gone)
        # Nothing left to passivate; then its next command activates it again, from the store.
        self.problem(self.passivate(tid, uid), 404, "actor-not-live")
        status, _, u = self.node.json("GET", f"/v1/tenants/{tid}/users/{uid}", auth=ROOT)
        self.assertEqual((status, u["name"]), (200, "Op"))
        again = self.actor(tid, uid)
        self.assertTrue(again["live"])
        self.assertEqual(again["lastHandled"], ["get"])
        self.assertEqual([e["event"] for e in again["lifecycle"]], ["activated", "passivated"], again)
        self.assertGreaterEqual(again["lifecycle"][0]["at"], again["lifecycle"][1]["at"][:19])
        # The tenant's own actor too; bad keys are 400.
        status, _, done = self.node.json("POST", f"/v1/admin/actors/tenant/{tid}/passivate", auth=OPERATOR)
        self.assertEqual((status, done.get("kind")), (200, "tenant"), done)
        self.problem(self.node.json("POST", f"/v1/admin/actors/user/{uid}/passivate", auth=OPERATOR), 400,
                     "invalid-parameter")
        self.problem(self.node.json("POST", f"/v1/admin/actors/robot/{uid}/passivate?tenantId={tid}",
                                    auth=OPERATOR), 400, "invalid-parameter")
        records = self.audit(self.node, lambda rs: sum(r["target"].endswith(uid) for r in rs) >= 2)
        mine = [r for r in records if r["target"] == f"actor:user/{tid}/{uid}"]
        self.assertEqual(sorted((r["outcome"], r["status"]) for r in mine), [("failure", 404), ("success", 200)])
        self.assertEqual({r["actor"] for r in mine}, {f"jwt:{ISSUER}#the-operator"})

    def test_busy_while_work_is_on_its_way(self):
        tid, uid = self.user()
        path = f"/v1/tenants/{tid}/users/{uid}"
        results = {}

        def read(name, stall=None):
            n = Node.__new__(Node)  # a connection of its own to the same node
            n.__dict__.update(port=self.node.port, tls=None, conn=None, admin_key=None)
            headers = {"X-Colony-Fault": f"stall={stall}"} if stall else None
            try:
                results[name] = n.request("GET", path, headers=headers, auth=ROOT)[0]
            finally:
                if n.conn:
                    n.conn.close()

        # One read holds the actor for 1.5 s; the passivation is queued
        # behind it, and another read behind that: when the actor gets to the
        # passivation, a command is on its way, so it stays.
        stalled = threading.Thread(target=read, args=("stalled", 1500))
        stalled.start()
        time.sleep(0.3)
        answer = {}
        asked = threading.Thread(target=lambda: answer.update(r=self.passivate(tid, uid)))
        asked.start()
        time.sleep(0.3)
        behind = threading.Thread(target=read, args=("behind",))
        behind.start()
        for t in (stalled, asked, behind):
            t.join(timeout=15)
        doc = self.problem(answer["r"], 409, "actor-busy")
        self.assertEqual(answer["r"][1].get("Retry-After"), "1")
        self.assertIn("retry", doc["detail"])
        self.assertEqual(results, {"stalled": 200, "behind": 200})
        self.assertTrue(self.actor(tid, uid)["live"])
        self.assertEqual(self.passivate(tid, uid)[0], 200)  # idle now: it goes

    def test_drain_alone_and_the_cookie(self):
        doc = self.problem(self.node.json("POST", "/v1/admin/nodes/whoever/drain", auth=OPERATOR), 409,
                           "not-clustered")
        self.assertIn("alone", doc["detail"])
        # The session cookie acts only from the console's own origin.
        status, hdrs, _ = self.node.request("POST", "/console/session", {"token": OPERATOR}, auth=False)
        self.assertEqual(status, 204)
        cookie = hdrs["Set-Cookie"].split(";")[0]
        tid, uid = self.user()
        own = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{self.node.port}"}
        self.assertEqual(self.passivate(tid, uid, auth=False, headers={"Cookie": cookie})[0], 401)
        self.assertEqual(self.passivate(tid, uid, auth=False, headers={**own, "Origin": "https://evil.example"})[0],
                         401)
        self.assertTrue(self.actor(tid, uid)["live"])
        # A change that is not an operator action never takes the cookie.
        self.assertEqual(self.node.json("POST", f"/v1/tenants/{tid}/users", {"email": "c@example.com"}, auth=False,
                                        headers=own)[0], 401)
        status, _, done = self.passivate(tid, uid, auth=False, headers=own)
        self.assertEqual(status, 200, done)
        drained = self.audit(self.node, lambda rs: any(r["action"] == "node.drain" and r["status"] == 409
                                                       for r in rs))
        self.assertTrue([r for r in drained if r["action"] == "node.drain" and r["target"] == "node:whoever"
                         and r["outcome"] == "failure"], drained)

    def test_colonyctl_passivate(self):
        tid, uid = self.user()
        env = dict(os.environ, COLONY_URL=f"http://127.0.0.1:{self.node.port}", COLONY_TOKEN=OPERATOR)

        def ctl(*args):
            return subprocess.run([COLONYCTL, *args], capture_output=True, text=True, env=env, timeout=60)

        p = ctl("actor", "passivate", "user", uid, "--tenant", tid)
        self.assertEqual(p.returncode, 2, p.stderr)  # a change: --yes
        self.assertIn("--yes", p.stderr)
        p = ctl("actor", "passivate", "user", uid, "--tenant", tid, "--yes", "-o", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(json.loads(p.stdout)["passivated"])
        p = ctl("actor", "passivate", "user", uid, "--tenant", tid, "--yes")
        self.assertEqual(p.returncode, 4, p.stdout + p.stderr)  # not live: not found
        self.assertIn("actor-not-live", p.stderr)


if __name__ == "__main__":
    unittest.main()
