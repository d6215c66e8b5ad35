"""The introspection API gathered across three nodes (docs/console.md): every
answer names the node that answered, counts what each node holds, finds an
actor on its owner through any node, and says "partial" (and colonyctl exits
3) when a member does not answer."""
import json
import os
import signal
import subprocess
import time
import uuid

from cluster_kit import ROOT, ClusterCase, request_at, wait_for

COLONYCTL = os.environ.get("COLONYCTL", os.path.join(os.path.dirname(os.environ["COLONYD"]), "colonyctl"))


class Console(ClusterCase):
    # Lenient probes: node3 is frozen below and must stay a member (not be
    # voted dead, which ends the asking) while the gathered answers wait for it.
    extra = ("--cluster.missed-probes", "30")

    def users(self, k, tid, n):
        ids = []
        for i in range(n):
            status, _, doc = self.c.request(k, "POST", f"/v1/tenants/{tid}/users",
                                            {"email": f"c{i}-{uuid.uuid4().hex[:6]}@example.com", "name": "C"})
            self.assertEqual(status, 201, doc)
            ids.append(doc["id"])
        return ids

    def ctl(self, k, *args):
        env = dict(os.environ, COLONY_URL=f"http://127.0.0.1:{self.c.port(k)}", COLONY_TOKEN=ROOT)
        return subprocess.run([COLONYCTL, *args], capture_output=True, text=True, env=env, timeout=60)

    def test_gathered_answers(self):
        status, _, doc = self.c.request(2, "GET", "/v1/admin/nodes")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["answeredBy"], "node2")
        self.assertFalse(doc["partial"], doc)
        self.assertTrue(doc["membershipAgrees"], doc)
        nodes = {n["nodeName"]: n for n in doc["nodes"] if n["status"] != "dead"}
        self.assertEqual(sorted(nodes), ["node1", "node2", "node3"])
        for name, n in nodes.items():
            self.assertTrue(n["answered"], n)
            self.assertEqual(n["status"], "active")
            self.assertEqual(n["activeMembers"], ["node1", "node2", "node3"])
            self.assertEqual(n["http"], f"127.0.0.1:{self.c.port(int(name[-1]))}")
            self.assertGreater(n["leaseRemainingMs"], 0)
        self.assertEqual(sum(n["shards"] for n in nodes.values()), 4096)
        self.assertEqual(len({n["version"] for n in nodes.values()}), 1)

        # One tenant per owner, 2 users each, created through node 1.
        tenants = {o: self.c.new_tenant(k=1, owner=o)["id"] for o in (1, 2, 3)}
        users = {o: self.users(1, t, 2) for o, t in tenants.items()}
        status, _, census = self.c.request(3, "GET", "/v1/admin/actors?top=100")
        self.assertEqual(status, 200, census)
        self.assertFalse(census["partial"])
        top = {t["tenantId"]: t for t in census["topTenants"]}
        for o, t in tenants.items():
            self.assertEqual(top[t]["nodes"], [f"node{o}"], top[t])
            self.assertEqual(top[t]["byKind"], {"tenant": 1, "user": 2})
        user = {k["kind"]: k for k in census["kinds"]}["user"]
        self.assertEqual(sum(v["live"] for v in user["byNode"].values()), user["live"])
        self.assertEqual(sorted(user["byNode"]), ["node1", "node2", "node3"])
        for o in (1, 2, 3):
            self.assertGreaterEqual(user["byNode"][f"node{o}"]["live"], 2)

        # The tenant page and an actor, through a node that does not own them.
        t, uid = tenants[2], users[2][0]
        status, _, page = self.c.request(1, "GET", f"/v1/admin/tenants/{t}")
        self.assertEqual(status, 200, page)
        self.assertEqual(page["placement"]["owner"], "node2")
        self.assertEqual(page["liveActors"]["byNode"], {"node2": 3})
        self.assertEqual(page["usage"]["usage"]["users"], 2)
        # Its own key's calls count where they were answered, its bucket at its owner.
        status, _, k = self.c.request(1, "POST", f"/v1/tenants/{t}/api-keys", {"name": "traffic", "roles": ["admin"]})
        self.assertEqual(status, 201, k)
        answers = [request_at(self.c.port(n), k["key"], "GET", path)[0]
                   for n, path in ((1, f"/v1/tenants/{t}"), (1, f"/v1/tenants/{t}"), (1, f"/v1/tenants/{t}/users/{uid}"),
                                   (3, f"/v1/tenants/{t}"), (3, f"/v1/tenants/{t}/users/{uuid.uuid4()}"))]
        self.assertEqual(answers, [200, 200, 200, 200, 404])
        status, _, page = self.c.request(3, "GET", f"/v1/admin/tenants/{t}")
        self.assertEqual(status, 200, page)
        self.assertEqual(page["requests"]["byNode"], {"node1": 3, "node3": 2}, page["requests"])
        self.assertEqual(page["requests"]["lastMinute"]["requests"], 5)
        self.assertEqual(page["requests"]["lastMinute"]["clientErrors"], 1)
        self.assertEqual(page["rateLimit"]["reportedBy"], "node2", page["rateLimit"])
        self.assertLessEqual(page["rateLimit"]["tokensLeft"], page["rateLimit"]["burst"])
        status, _, actor = self.c.request(3, "GET", f"/v1/admin/actors/user/{uid}?tenantId={t}")
        self.assertEqual(status, 200, actor)
        self.assertEqual(actor["answeredBy"], "node3")
        self.assertTrue(actor["live"], actor)
        self.assertEqual(actor["node"], "node2")
        self.assertEqual(actor["state"]["id"], uid)
        p = self.ctl(3, "actor", "show", "user", uid, "--tenant", t, "-o", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["node"], "node2")

        # A member that does not answer: the others' answers, marked partial.
        self.c.signal(3, signal.SIGSTOP)
        try:
            # The three at once: node3 stays frozen for one gather timeout, not three.
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(3) as pool:
                def timed(k, path):
                    started = time.time()
                    return self.c.request(k, "GET", path), time.time() - started
                nodes_f = pool.submit(timed, 1, "/v1/admin/nodes")
                census_f = pool.submit(timed, 2, "/v1/admin/actors")
                ctl_f = pool.submit(self.ctl, 1, "nodes")
                (status, _, doc), took = nodes_f.result()
                (c_status, _, census), _ = census_f.result()
                p = ctl_f.result()
        finally:
            self.c.signal(3, signal.SIGCONT)
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["partial"], doc)
        self.assertEqual([u["nodeName"] for u in doc["unanswered"]], ["node3"])
        self.assertLess(took, 5, "a silent member must not hold the answer past the gather timeout")
        answered = {n["nodeName"]: n["answered"] for n in doc["nodes"] if n["status"] != "dead"}
        self.assertEqual(answered, {"node1": True, "node2": True, "node3": False})
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("partial answer: no answer from node3", p.stdout)
        self.assertEqual(c_status, 200, census)
        self.assertTrue(census["partial"], census)
        self.assertEqual([u["nodeName"] for u in census["unanswered"]], ["node3"])
        self.assertNotIn("node3", {k["kind"]: k for k in census["kinds"]}["user"]["byNode"])
        print(f"\nconsole: 3 nodes gathered; a frozen member reported partial after {took:.1f} s", flush=True)

    def test_an_actor_page_tells_that_its_activation_was_evicted_when_its_shard_moved(self):
        t = self.c.new_tenant(k=1, owner=2)["id"]
        uid = self.users(1, t, 1)[0]
        status, _, actor = self.c.request(1, "GET", f"/v1/admin/actors/user/{uid}?tenantId={t}")
        self.assertEqual((status, actor["node"], actor["live"]), (200, "node2", True), actor)
        # Its shard goes to another node and comes back (an operator's drain
        # and undrain): node2 evicted the activation when the shard left.
        status, _, doc = self.c.request(1, "POST", "/v1/cluster/members/node2/drain")
        self.assertEqual(status, 202, doc)
        wait_for("node2 hands its shards off", lambda: self.c.owner(t)["owner"] != "node2", 30)
        status, _, away = self.c.request(1, "GET", f"/v1/admin/actors/user/{uid}?tenantId={t}")
        self.assertEqual(status, 200, away)
        self.assertNotEqual(away["node"], "node2")
        self.assertEqual(away["lifecycle"], [], away)  # the new owner never ran it
        status, _, doc = self.c.request(1, "POST", "/v1/cluster/members/node2/undrain")
        self.assertEqual(status, 202, doc)
        wait_for("the shard is node2's again", lambda: self.c.owner(t)["owner"] == "node2", 30)
        # node3 may learn of the move back a moment after the node asked above.
        def page():
            s, _, d = self.c.request(3, "GET", f"/v1/admin/actors/user/{uid}?tenantId={t}")
            return d if s == 200 and d.get("node") == "node2" else None
        back = wait_for("node3's page of the actor names node2", page, 30)
        self.assertFalse(back["live"], back)
        self.assertEqual([e["event"] for e in back["lifecycle"]], ["evicted"], back)
        self.assertEqual(self.c.request(1, "GET", f"/v1/tenants/{t}/users/{uid}")[0], 200)
        status, _, again = self.c.request(3, "GET", f"/v1/admin/actors/user/{uid}?tenantId={t}")
        self.assertEqual([e["event"] for e in again["lifecycle"]], ["activated", "evicted"], again)
