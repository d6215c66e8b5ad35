#!/usr/bin/env python3
"""The introspection API (GET /v1/admin/*) and colonyctl against one real
node: what each endpoint counts after real requests, its bounds and errors,
and every colonyctl command with -o json and -o table, its exit codes, and
`top` in a terminal (tmux), its screen read back.

Environment: colony_testkit/env.py; COLONYCTL names the CLI (default next to
COLONYD)."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from colony_testkit import AUDIENCE, COLONYD, ISSUER, SECRET, Node, NodeCase, token, wait_until  # noqa: E402

COLONYCTL = os.environ.get("COLONYCTL", os.path.join(os.path.dirname(COLONYD), "colonyctl"))


class AdminApi(NodeCase):
    def users(self, tid, n):
        ids = []
        for i in range(n):
            status, _, doc = self.node.json("POST", f"/v1/tenants/{tid}/users",
                                            {"email": f"u{i}-{uuid.uuid4().hex[:6]}@example.com", "name": f"U{i}"})
            self.assertEqual(status, 201, doc)
            ids.append(doc["id"])
        return ids

    def census(self, top=100):
        status, _, doc = self.node.json("GET", f"/v1/admin/actors?top={top}")
        self.assertEqual(status, 200, doc)
        return doc

    def test_nodes(self):
        status, hdrs, doc = self.node.json("GET", "/v1/admin/nodes")
        self.assertEqual(status, 200, doc)
        self.assertFalse(doc["partial"])
        self.assertEqual(doc["unanswered"], [])
        self.assertTrue(doc["membershipAgrees"])
        [n] = doc["nodes"]
        self.assertEqual(n["nodeName"], doc["answeredBy"])
        self.assertEqual(n["nodeName"], hdrs["X-Colony-Node"])
        self.assertTrue(n["answered"])
        self.assertEqual(n["status"], "active")
        self.assertEqual(n["shards"], 4096)
        self.assertEqual(n["http"], f"127.0.0.1:{self.node.port}")
        self.assertGreaterEqual(n["uptimeSeconds"], 0)
        self.assertRegex(n["version"], r"^\d+\.\d+")

    def test_live_actors_by_kind_and_tenant(self):
        before = self.census()
        t = self.tenant()
        self.users(t["id"], 3)
        doc = self.census()
        kinds = {k["kind"]: k for k in doc["kinds"]}
        old = {k["kind"]: k for k in before["kinds"]}
        self.assertEqual(kinds["user"]["activations"] - old["user"]["activations"], 3)
        self.assertEqual(kinds["user"]["live"] - old["user"]["live"], 3)
        self.assertGreaterEqual(kinds["tenant"]["live"], 1)
        node = doc["answeredBy"]
        self.assertEqual(kinds["user"]["byNode"][node]["live"], kinds["user"]["live"])
        [mine] = [x for x in doc["topTenants"] if x["tenantId"] == t["id"]]
        self.assertEqual(mine["byKind"], {"tenant": 1, "user": 3})
        self.assertEqual(mine["live"], 4)
        self.assertEqual(mine["nodes"], [node])
        # Bounded: top=1 lists one tenant, the busiest.
        self.users(t["id"], 2)
        one = self.census(top=1)
        self.assertEqual(len(one["topTenants"]), 1)
        self.assertGreaterEqual(one["topTenants"][0]["live"], 6)
        self.assertGreaterEqual(one["tenantsLive"], 1)
        for bad in ("0", "101", "x"):
            self.assertProblem(self.node.json("GET", f"/v1/admin/actors?top={bad}"), 400)

    def test_crashes_are_listed_with_their_reason(self):
        t = self.tenant()
        self.assertProblem(self.node.json("GET", f"/v1/tenants/{t['id']}", headers={"X-Colony-Fault": "crash"}), 500)
        status, _, doc = self.node.json("GET", "/v1/admin/crashes?limit=5")
        self.assertEqual(status, 200, doc)
        self.assertFalse(doc["partial"])
        mine = [c for c in doc["data"] if c["tenantId"] == t["id"]]
        self.assertEqual(len(mine), 1, doc)
        self.assertEqual(mine[0]["kind"], "tenant")
        self.assertEqual(mine[0]["id"], t["id"])
        self.assertEqual(mine[0]["node"], doc["answeredBy"])
        self.assertTrue(mine[0]["reason"])
        self.assertLessEqual(len(doc["data"]), 5)
        census = {k["kind"]: k for k in self.census()["kinds"]}
        self.assertGreaterEqual(census["tenant"]["crashes"], 1)
        self.assertProblem(self.node.json("GET", "/v1/admin/crashes?limit=65"), 400)
        # The actor page tells its lifecycle: the crash, then (once a read
        # activates it again) the new activation, newest first.
        status, _, page = self.node.json("GET", f"/v1/admin/actors/tenant/{t['id']}")
        self.assertEqual(status, 200, page)
        self.assertFalse(page["live"])
        self.assertEqual([e["event"] for e in page["lifecycle"]], ["crashed"], page)
        self.assertEqual(page["lifecycle"][0]["reason"], mine[0]["reason"])
        self.assertEqual(self.node.json("GET", f"/v1/tenants/{t['id']}")[0], 200)
        status, _, page = self.node.json("GET", f"/v1/admin/actors/tenant/{t['id']}")
        self.assertTrue(page["live"], page)
        self.assertEqual([e["event"] for e in page["lifecycle"]], ["activated", "crashed"], page)
        self.assertGreaterEqual(page["lifecycle"][0]["at"][:19], page["lifecycle"][1]["at"][:19])

    def test_stores(self):
        def stores():
            status, _, doc = self.node.json("GET", "/v1/admin/stores")
            self.assertEqual(status, 200, doc)
            return doc
        before = stores()
        self.assertFalse(before["partial"])
        self.assertEqual(before["store"], "sqlite")
        t = self.tenant()
        self.users(t["id"], 3)
        doc = stores()
        [n] = doc["nodes"]
        self.assertEqual(n["nodeName"], doc["answeredBy"])
        commit = n["store"]["commitSeconds"]
        old = before["nodes"][0]["store"]["commitSeconds"]["count"]
        self.assertGreaterEqual(commit["count"] - old, 4)  # the tenant and three users, each committed
        self.assertEqual(doc["totals"]["commits"], commit["count"])
        self.assertIsNotNone(commit["p99"])
        self.assertLessEqual(commit["p50"], commit["p99"])
        self.assertLessEqual(commit["buckets"][-1][1], commit["count"])
        self.assertGreaterEqual(n["store"]["batchSize"]["count"], 1)
        # No Kafka here: the relay is off, and it says so instead of "down".
        self.assertEqual(n["kafka"], {"configured": False, "brokersUp": None, "consumerLag": [],
                                      "consumerLagTotal": 0})
        self.assertEqual(n["outbox"]["backlog"], 0)
        self.assertEqual(sorted(n["webhooks"]["attempts"]), ["dead", "delivered", "retry"])
        # The webhook backlog: an endpoint nobody listens on keeps its deliveries pending (retried with backoff).
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            dead_port = closed.getsockname()[1]  # bound, never listening: connections are refused
            pending_before = n["webhooks"]["backlog"]["pending"]
            status, _, w = self.node.json("POST", f"/v1/tenants/{t['id']}/webhooks",
                                          {"url": f"http://127.0.0.1:{dead_port}/hook", "eventTypes": ["user.created"]})
            self.assertEqual(status, 201, w)
            self.users(t["id"], 2)

            def backlog():
                b = stores()["nodes"][0]["webhooks"]["backlog"]
                return b if b["pending"] >= pending_before + 2 else None
            b = wait_until(backlog, timeout=10, what="two pending deliveries")
            self.assertGreaterEqual(b["oldestAgeSeconds"], 0)
            self.assertLessEqual(b["dueNow"], b["pending"])
            doc = stores()
            self.assertEqual(doc["totals"]["webhookBacklog"], doc["nodes"][0]["webhooks"]["backlog"]["pending"])
            status, _, _ = self.node.json("DELETE", f"/v1/tenants/{t['id']}/webhooks/{w['id']}")
            self.assertEqual(status, 204)  # its pending deliveries die with it: the backlog drops back
            wait_until(lambda: stores()["nodes"][0]["webhooks"]["backlog"]["pending"] <= pending_before, timeout=10,
                       what="the backlog back to where it was")

    def test_tenant_page(self):
        t = self.tenant(plan="pro")
        self.users(t["id"], 2)
        for ref in (t["id"], t["slug"]):
            status, _, doc = self.node.json("GET", f"/v1/admin/tenants/{ref}")
            self.assertEqual(status, 200, doc)
            self.assertEqual(doc["tenantId"], t["id"])
            self.assertEqual(doc["placement"]["owner"], doc["answeredBy"])
            self.assertEqual(doc["liveActors"]["total"], 3)
            self.assertEqual(doc["liveActors"]["byKind"], {"tenant": 1, "user": 2})
            self.assertEqual(doc["liveActors"]["byNode"], {doc["answeredBy"]: 3})
            self.assertEqual(doc["usage"]["plan"], "pro")
            self.assertEqual(doc["usage"]["usage"]["users"], 2)
            self.assertIn("maxUsers", doc["usage"]["limits"])
        self.assertProblem(self.node.json("GET", f"/v1/admin/tenants/{uuid.uuid4()}"), 404)

    def test_actor_page(self):
        t = self.tenant()
        [uid] = self.users(t["id"], 1)
        status, _, doc = self.node.json("GET", f"/v1/admin/actors/user/{uid}?tenantId={t['id']}")
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["live"])
        self.assertEqual(doc["node"], doc["answeredBy"])
        self.assertGreaterEqual(doc["commandsRouted"], 1)
        self.assertGreaterEqual(doc["idleMs"], 0)
        self.assertEqual(doc["state"]["id"], uid)
        self.assertFalse(doc["stateTruncated"])
        status, _, doc = self.node.json("GET", f"/v1/admin/actors/tenant/{t['id']}")
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["live"])
        self.assertEqual(doc["state"]["slug"], t["slug"])
        # Not live: said so, and the inspection does not activate it.
        ghost = str(uuid.uuid4())
        status, _, doc = self.node.json("GET", f"/v1/admin/actors/user/{ghost}?tenantId={t['id']}")
        self.assertEqual(status, 200, doc)
        self.assertFalse(doc["live"])
        self.assertIsNone(doc["state"])
        self.assertProblem(self.node.json("GET", f"/v1/admin/actors/user/{uid}"), 400)
        self.assertProblem(self.node.json("GET", f"/v1/admin/actors/widget/{uid}?tenantId={t['id']}"), 400)  # no such kind
        self.assertProblem(self.node.json("GET", f"/v1/admin/actors/tenant/{'x' * 65}"), 400)

    def test_mailboxes(self):
        """A user stalled on one command (fault injection) while five more
        wait: its depth is 5 in the mailboxes census and on its actor page,
        flagged growing, and back to 0 once they are handled."""
        t = self.tenant()
        [uid] = self.users(t["id"], 1)
        path = f"/v1/tenants/{t['id']}/users/{uid}"

        def mailboxes(top=10):
            status, _, doc = self.node.json("GET", f"/v1/admin/mailboxes?top={top}")
            self.assertEqual(status, 200, doc)
            return doc

        idle = mailboxes()
        self.assertFalse(idle["partial"])
        self.assertNotIn(uid, [d["id"] for d in idle["deepest"]])
        results = []

        def get(headers=None):  # each on its own connection: the node's is shared
            conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=30)
            try:
                conn.request("GET", path, headers={"Authorization": "Bearer " + self.node.admin_key, **(headers or {})})
                results.append(conn.getresponse().status)
            finally:
                conn.close()
        stalled = threading.Thread(target=get, args=({"X-Colony-Fault": "stall=3000"},))
        stalled.start()
        time.sleep(0.3)  # the stalled read is being handled
        waiting = [threading.Thread(target=get) for _ in range(5)]
        for w in waiting:
            w.start()

        def deep():
            doc = mailboxes()
            mine = [d for d in doc["deepest"] if d["id"] == uid]
            return (doc, mine[0]) if mine and mine[0]["depth"] == 5 else None
        doc, mine = wait_until(deep, timeout=2.5, what="the stalled user's depth of 5")
        self.assertEqual(mine["kind"], "user")
        self.assertEqual(mine["tenantId"], t["id"])
        self.assertEqual(mine["node"], doc["answeredBy"])
        self.assertTrue(mine["growing"], mine)
        self.assertGreaterEqual(mine["commandsRouted"], 7)  # its creation, the stalled read, five waiting
        self.assertGreaterEqual(doc["growing"], 1)
        users = {k["kind"]: k for k in doc["kinds"]}["user"]
        self.assertGreaterEqual(users["max"], 5)
        self.assertGreaterEqual(users["queued"], 5)
        self.assertGreaterEqual(users["nonEmpty"], 1)
        self.assertEqual(users["byNode"][doc["answeredBy"]]["max"], users["max"])
        self.assertIn(users["p50"], (0, 1, 2, 4, 5))  # to the bucket's bound, never above the max
        status, _, page = self.node.json("GET", f"/v1/admin/actors/user/{uid}?tenantId={t['id']}")
        self.assertEqual(status, 200, page)
        self.assertEqual(page["mailboxDepth"], 5)
        for th in [stalled, *waiting]:
            th.join(timeout=15)
        self.assertEqual(sorted(results), [200] * 6)
        after = mailboxes()
        self.assertNotIn(uid, [d["id"] for d in after["deepest"]])
        # The first read routed behind the stalled one waited ~2.7 s: the
        # sampled queueing time of users shows it, since the node started
        # and in the window since a census taken while it waited.
        users = {k["kind"]: k for k in after["kinds"]}["user"]
        for q in (users["queueing"], users["queueingWindow"], users["byNode"][after["answeredBy"]]["queueingWindow"]):
            self.assertGreaterEqual(q["samples"], 1, users)
            self.assertGreaterEqual(q["maxUs"], 2 ** 21, users)  # 2.1 s, the bucket's bound
            self.assertLessEqual(q["maxUs"], 2 ** 23, users)
            self.assertLessEqual(q["p50Us"], q["p99Us"])
            self.assertLessEqual(q["p99Us"], q["maxUs"])
        status, _, page = self.node.json("GET", f"/v1/admin/actors/user/{uid}?tenantId={t['id']}")
        self.assertEqual(page["mailboxDepth"], 0)
        # Newest first: the six reads, its creation (forwarded by its
        # tenant); the pages' own reads of its state are not its traffic.
        self.assertEqual(page["lastHandled"], ["get"] * 6 + ["create"], page)
        self.assertEqual([e["event"] for e in page["lifecycle"]], ["activated"], page)
        for bad in ("0", "101", "x"):
            self.assertProblem(self.node.json("GET", f"/v1/admin/mailboxes?top={bad}"), 400)

    def test_platform_credentials_only(self):
        t = self.tenant()
        owner = token(tenant=t["id"], roles=["owner"])
        for path in ("/v1/admin/nodes", "/v1/admin/actors", "/v1/admin/crashes", "/v1/admin/stores", "/v1/admin/mailboxes",
                     f"/v1/admin/tenants/{t['id']}",
                     f"/v1/admin/actors/tenant/{t['id']}"):
            self.assertProblem(self.node.json("GET", path, auth=False), 401)
            status = self.node.json("GET", path, auth=owner)[0]
            self.assertIn(status, (401, 403, 404), path)


class TenantTraffic(unittest.TestCase):
    """The tenant page's requests and rate limit, on a node whose plans make
    the buckets small and slow (1 request/s, burst 10), so that what the page
    reads seconds later is still what the burst left."""

    PLANS = """[colony.plans]
free = { max-users = 5 }
slow = { max-users = 5, requests-per-second = 1, burst = 10 }
tiny = { api-calls-per-month = 3, requests-per-second = 100, burst = 100 }
"""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-e2e-traffic-")
        conf = os.path.join(cls.dir, "colony.conf")
        with open(conf, "w") as f:
            f.write(cls.PLANS)
        cls.node = Node(cls.dir, ["--config", conf, "--ratelimit.credential-percent", "100", "--auth-jwt-hs256-secret",
                                  SECRET, "--auth-issuer", ISSUER, "--auth-audience", AUDIENCE])

    @classmethod
    def tearDownClass(cls):
        code, _ = cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert code == 0, code

    def tenant(self, plan):
        status, _, t = self.node.json("POST", "/v1/tenants", {"slug": "tr-" + uuid.uuid4().hex[:10], "name": "T",
                                                              "plan": plan}, auth=self.root)
        self.assertEqual(status, 201, t)
        return t["id"]

    def page(self, tid):
        status, _, doc = self.node.json("GET", f"/v1/admin/tenants/{tid}", auth=self.root)
        self.assertEqual(status, 200, doc)
        return doc

    root = token(roles=["platform_admin"])

    def test_requests_errors_and_the_rate_bucket(self):
        tid = self.tenant("slow")
        fresh = self.page(tid)
        self.assertEqual(fresh["requests"]["lastMinute"]["requests"], 0)
        self.assertEqual(fresh["requests"]["byNode"], {})
        self.assertEqual(fresh["rateLimit"]["tokensLeft"], 10)  # no bucket yet: full
        self.assertEqual(fresh["rateLimit"]["burstUsed"], 0)
        owner = token(tenant=tid, roles=["owner"])
        statuses = [self.node.request("GET", f"/v1/tenants/{tid}/users/{uuid.uuid4()}", auth=owner)[0] for _ in range(2)]
        statuses += [self.node.request("GET", f"/v1/tenants/{tid}", auth=owner)[0] for _ in range(10)]
        self.assertEqual(statuses[:2], [404, 404])
        limited = statuses.count(429)
        self.assertGreaterEqual(limited, 1, statuses)  # 12 calls against a burst of 10
        self.assertEqual(statuses.count(200), 10 - limited)
        doc = self.page(tid)
        self.page(tid)  # platform calls are not the tenant's
        doc = self.page(tid)
        minute, total = doc["requests"]["lastMinute"], doc["requests"]["total"]
        for counts in (minute, total):
            self.assertEqual(counts["requests"], 12, doc["requests"])
            self.assertEqual(counts["clientErrors"], 2)
            self.assertEqual(counts["rateLimited"], limited)
            self.assertEqual(counts["serverErrors"], 0)
            self.assertEqual(counts["quotaExceeded"], 0)
        self.assertGreaterEqual(minute["windowSeconds"], 1)
        self.assertAlmostEqual(minute["requestsPerSecond"], 12 / minute["windowSeconds"], delta=0.01)
        self.assertAlmostEqual(minute["errorsPerSecond"], 2 / minute["windowSeconds"], delta=0.01)
        self.assertEqual(doc["requests"]["byNode"], {doc["answeredBy"]: 12})
        rl = doc["rateLimit"]
        self.assertEqual((rl["plan"], rl["ratePerSecond"], rl["burst"]), ("slow", 1, 10))
        self.assertEqual(rl["reportedBy"], doc["answeredBy"])
        # The bucket refills at 1/s: seconds after the burst it is still low.
        self.assertLess(rl["tokensLeft"], 6, rl)
        self.assertGreater(rl["burstUsed"], 0.4, rl)

    def test_calls_over_the_monthly_quota(self):
        tid = self.tenant("tiny")
        owner = token(tenant=tid, roles=["owner"])
        statuses = [self.node.request("GET", f"/v1/tenants/{tid}", auth=owner)[0] for _ in range(5)]
        self.assertEqual(statuses, [200, 200, 200, 429, 429])
        doc = self.page(tid)
        self.assertEqual(doc["requests"]["lastMinute"]["quotaExceeded"], 2)
        self.assertEqual(doc["requests"]["lastMinute"]["rateLimited"], 0)
        self.assertEqual(doc["requests"]["total"]["requests"], 5)


class Colonyctl(NodeCase):
    def ctl(self, *args, env=None, expect=0):
        e = dict(os.environ, COLONY_URL=f"http://127.0.0.1:{self.node.port}", COLONY_TOKEN=self.node.admin_key)
        e.update(env or {})
        p = subprocess.run([COLONYCTL, *args], capture_output=True, text=True, env=e, timeout=60)
        self.assertEqual(p.returncode, expect, f"colonyctl {' '.join(args)}: {p.stdout}\n{p.stderr}")
        return p

    def test_every_command_as_json_and_table(self):
        t = self.tenant()
        status, _, u = self.node.json("POST", f"/v1/tenants/{t['id']}/users", {"email": "c@example.com", "name": "C"})
        self.assertEqual(status, 201, u)
        nodes = json.loads(self.ctl("nodes", "-o", "json").stdout)
        self.assertEqual(len(nodes["nodes"]), 1)
        name = nodes["answeredBy"]
        table = self.ctl("nodes").stdout
        self.assertIn("NODE", table)
        self.assertIn(name, table)
        self.assertIn("active", table)
        shards = json.loads(self.ctl("shards", "-o", "json").stdout)
        self.assertEqual(shards["members"][0]["shards"], 4096)
        self.assertIn("4096", self.ctl("shards").stdout)
        actors = json.loads(self.ctl("actors", "top", "-n", "100", "-o", "json").stdout)
        self.assertIn(t["id"], [x["tenantId"] for x in actors["topTenants"]])
        self.assertIn(t["id"], self.ctl("actors", "top", "--top", "100").stdout)
        stores = json.loads(self.ctl("stores", "-o", "json").stdout)
        self.assertGreaterEqual(stores["totals"]["commits"], 2)
        text = self.ctl("stores").stdout
        self.assertIn("store sqlite", text)
        self.assertIn("COMMITS", text)
        self.assertIn(name, text)
        boxes = json.loads(self.ctl("mailboxes", "-n", "5", "-o", "json").stdout)
        self.assertIn("user", [k["kind"] for k in boxes["kinds"]])
        self.assertLessEqual(len(boxes["deepest"]), 5)
        text = self.ctl("mailboxes").stdout
        self.assertIn("P99", text)
        self.assertIn("deepest mailboxes", text)
        self.ctl("mailboxes", "-n", "0", expect=2)
        shown = json.loads(self.ctl("tenant", "show", t["slug"], "-o", "json").stdout)
        self.assertEqual(shown["tenantId"], t["id"])
        self.assertEqual(shown["liveActors"]["byKind"]["user"], 1)
        text = self.ctl("tenant", "show", t["id"]).stdout
        self.assertIn(name, text)
        self.assertIn("users", text)
        actor = json.loads(self.ctl("actor", "show", "user", u["id"], "--tenant", t["id"], "-o", "json").stdout)
        self.assertTrue(actor["live"])
        self.assertEqual(actor["state"]["email"], "c@example.com")
        self.assertIn("c@example.com", self.ctl("actor", "show", "user", u["id"], "--tenant", t["id"]).stdout)
        self.node.json("GET", f"/v1/tenants/{t['id']}", headers={"X-Colony-Fault": "crash"})
        crashes = json.loads(self.ctl("crashes", "-o", "json").stdout)
        self.assertIn(t["id"], [c["tenantId"] for c in crashes["data"]])
        self.assertIn(t["id"], self.ctl("crashes").stdout)

    def test_exit_codes(self):
        self.ctl("--version")
        self.assertIn("nodes", self.ctl("--help").stdout)
        self.ctl(expect=2)                                   # no command
        self.ctl("nodes", "-o", "yaml", expect=2)            # bad option value
        self.ctl("frobnicate", expect=2)                     # unknown command
        self.ctl("nodes", env={"COLONY_URL": "ftp://x"}, expect=2)
        self.ctl("drain", "somebody", expect=2)              # a change without --yes
        self.ctl("tenant", "show", str(uuid.uuid4()), expect=4)
        p = self.ctl("nodes", env={"COLONY_TOKEN": "wrong"}, expect=1)
        self.assertIn("401", p.stderr)
        p = self.ctl("drain", "somebody", "--yes", expect=1)  # a single node has nobody to drain to
        self.assertIn("409", p.stderr)
        # Nobody listening: port 1 on loopback refuses.
        p = self.ctl("nodes", "--timeout", "2", env={"COLONY_URL": "http://127.0.0.1:1"}, expect=1)
        self.assertIn("connecting", p.stderr)

    def test_events_tail(self):
        t = self.tenant()
        other = self.tenant()
        emails = []
        for i in range(2):
            emails.append(f"tail{i}-{uuid.uuid4().hex[:6]}@example.com")
            status, _, doc = self.node.json("POST", f"/v1/tenants/{t['id']}/users", {"email": emails[-1], "name": "T"})
            self.assertEqual(status, 201, doc)
        self.node.json("POST", f"/v1/tenants/{other['id']}/users", {"email": "o@example.com", "name": "O"})
        # The latest events, filtered on the node by tenant (by slug here) and type.
        lines = self.ctl("events", "tail", "--tenant", t["slug"], "--type", "user.created", "--count", "2",
                         "-o", "json").stdout.splitlines()
        got = [json.loads(x) for x in lines]
        self.assertEqual([g["event"]["userChanged"]["state"]["email"] for g in got], emails)
        self.assertEqual({g["event"]["tenantId"] for g in got}, {t["id"]})
        self.assertLess(got[0]["position"], got[1]["position"])
        table = self.ctl("events", "tail", "--tenant", t["id"], "--count", "1").stdout
        self.assertIn("POSITION", table.splitlines()[0])
        self.assertIn("tenant.created", table)
        # Following: started after the last position, it prints the next event as it commits.
        last = got[1]["position"]
        e = dict(os.environ, COLONY_URL=f"http://127.0.0.1:{self.node.port}", COLONY_TOKEN=self.node.admin_key)
        follow = subprocess.Popen([COLONYCTL, "events", "tail", "--tenant", t["id"], "--after", str(last),
                                   "--count", "1", "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=e)
        try:
            time.sleep(0.5)
            self.assertIsNone(follow.poll(), "the tail must wait for a new event")
            status, _, u = self.node.json("PATCH", f"/v1/tenants/{t['id']}", {"name": "tailed"})
            self.assertEqual(status, 200, u)
            out, err = follow.communicate(timeout=10)
        finally:
            if follow.poll() is None:
                follow.kill()
        self.assertEqual(follow.returncode, 0, err)
        [new] = [json.loads(x) for x in out.splitlines()]
        self.assertEqual(new["event"]["type"], "tenant.updated")
        self.assertGreater(new["position"], last)
        self.ctl("events", "tail", "--tenant", str(uuid.uuid4()), "--count", "1", expect=4)
        self.ctl("events", "tail", "--count", "0", expect=2)

    def test_top_in_a_terminal(self):
        session = "colonyctl-top-" + uuid.uuid4().hex[:8]
        env = f"COLONY_URL=http://127.0.0.1:{self.node.port} COLONY_TOKEN={self.node.admin_key}"
        socket = os.path.join(self.dir, "tmux.sock")
        tmux = ["tmux", "-S", socket]
        subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                        f"env {env} {COLONYCTL} top --interval 0.5; echo EXITED $?; sleep 30"], check=True)
        try:
            def screen():
                return subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True,
                                      text=True).stdout
            wait_until(lambda: "ACT/S" in screen() and "/s" in screen().split("ACT/S", 1)[1], timeout=20,
                       what="top showing rates")
            s = screen()
            self.assertIn("colonyctl top", s)
            self.assertIn("NODE", s)
            self.assertIn("KIND", s)
            self.assertIn("tenant", s)
            subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
            wait_until(lambda: "EXITED 0" in screen(), timeout=10, what="top to quit on q")
        finally:
            subprocess.run([*tmux, "kill-server"], capture_output=True)


if __name__ == "__main__":
    unittest.main()
