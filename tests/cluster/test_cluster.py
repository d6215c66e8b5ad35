"""The cluster core on three nodes sharing one PostgreSQL database
(docs/clustering.md, "What the tests cover"): any node answers for any
tenant; kill -9 of an owner under write load; a frozen owner (SIGSTOP) that
wakes up as a zombie; a short freeze that changes nothing; two nodes dying
together; a fourth node joining; a forced double activation; a restart
under the same name; the handshake's refusals."""
import http.client
import os
import signal
import subprocess
import threading
import time
import unittest
import uuid

from cluster_kit import ROOT, Cluster, psql

FAILOVER_TARGET_S = 15


class ClusterCase(unittest.TestCase):
    nodes = 3
    extra = ()

    def setUp(self):
        self.c = Cluster(self.nodes, self.extra)
        self.c.wait_converged()

    def tearDown(self):
        self.c.stop()

    def node_of(self, tenant_id):
        return int(self.c.owner(tenant_id)["owner"].removeprefix("node"))


class AnyNode(ClusterCase):
    def test_any_node_answers_reads_and_writes_for_any_tenant(self):
        view = self.c.view(2)
        self.assertEqual(view["clusterName"], self.c.name)
        self.assertEqual(view["answeredBy"], "node2")
        self.assertEqual(sorted(m["nodeName"] for m in view["members"]), ["node1", "node2", "node3"])
        self.assertEqual(sum(m["shards"] for m in view["members"]), 4096)
        for m in view["members"]:  # rendezvous hashing: about a third each
            self.assertGreater(m["shards"], 1000, view)
            self.assertTrue(m["connected"], view)
        owners = set()
        for i in range(12):
            t = self.c.new_tenant(k=1 + i % 3)
            place = self.c.owner(t["id"], k=1 + (i + 1) % 3)
            self.assertEqual(place, self.c.owner(t["id"], k=1 + (i + 2) % 3))  # the same on every node
            owners.add(place["owner"])
            for k in (1, 2, 3):  # write through each node, read the write back through each node
                status, hdrs, u = self.c.request(k, "POST", f"/v1/tenants/{t['id']}/users",
                                                 {"email": f"u{k}-{i}@example.com", "name": f"U{k}"})
                self.assertEqual(status, 201, u)
                self.assertEqual(hdrs["X-Colony-Node"], f"node{k}")
                for j in (1, 2, 3):
                    status, hdrs, got = self.c.request(j, "GET", f"/v1/tenants/{t['id']}/users/{u['id']}")
                    self.assertEqual(status, 200, got)
                    self.assertEqual(got["email"], f"u{k}-{i}@example.com")
                    self.assertEqual(hdrs["X-Colony-Node"], f"node{j}")
            status, _, patched = self.c.request(1 + i % 3, "PATCH", f"/v1/tenants/{t['id']}", {"name": "renamed"})
            self.assertEqual(status, 200, patched)
            status, _, seen = self.c.request(1 + (i + 1) % 3, "GET", f"/v1/tenants/{t['id']}")
            self.assertEqual((status, seen["name"], seen["version"]), (200, "renamed", patched["version"]))
        self.assertGreater(len(owners), 1)  # tenants did land on several nodes
        status, _, doc = self.c.request(1, "GET", "/v1/cluster/placement/" + str(uuid.uuid4()))
        self.assertEqual(status, 404, doc)
        status, _, doc = self.c.request(1, "GET", "/v1/cluster", headers={"Authorization": "Bearer nope"})
        self.assertEqual(status, 401)
        status, _, body = self.c.request(1, "GET", "/readyz?verbose")
        self.assertEqual(status, 200)
        # S17: an oversized request is refused at the edge of any node, never forwarded.
        t = self.c.new_tenant(k=1, owner=2)
        status, _, doc = self.c.request(1, "POST", f"/v1/tenants/{t['id']}/users",
                                        {"email": "big@example.com", "name": "x" * (2 * 1024 * 1024)})
        self.assertEqual(status, 413, doc)

    def test_every_answer_names_the_node_and_metrics_count_forwards(self):
        t = self.c.new_tenant(k=1)
        owner = self.node_of(t["id"])
        other = 1 if owner != 1 else 2
        for _ in range(5):
            status, hdrs, _ = self.c.request(other, "GET", f"/v1/tenants/{t['id']}")
            self.assertEqual((status, hdrs["X-Colony-Node"]), (200, f"node{other}"))
        conn_status, _, _ = self.c.request(other, "GET", "/metrics")
        self.assertEqual(conn_status, 200)
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.c.port(other), timeout=10)
        conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + __import__("cluster_kit").ROOT})
        text = conn.getresponse().read().decode()
        self.assertRegex(text, r'colony_cluster_forwarded_total\{outcome="ok"\} [1-9]')
        self.assertIn('colony_cluster_members{status="active"} 3', text)
        self.assertIn("colony_cluster_shards_owned", text)

    def test_concurrent_forwards_share_messages_and_each_gets_its_own_answer(self):
        t = self.c.new_tenant(k=1, owner=2)
        status, _, doc = self.c.request(2, "PATCH", f"/v1/tenants/{t['id']}", {"plan": "pro"})  # room for the users
        self.assertEqual(status, 200, doc)
        users = []
        for i in range(24):
            status, _, u = self.c.request(2, "POST", f"/v1/tenants/{t['id']}/users",
                                          {"email": f"b{i}@example.com", "name": f"B{i}"})
            self.assertEqual(status, 201, u)
            users.append(u)
        before, before2 = self.metric_values(1), self.metric_values(2)
        # Answers are matched to their commands by job id inside a batch: 24
        # threads reading different users through node1 must each get theirs.
        wrong, errors = [], []

        def reader(u):
            for _ in range(25):
                status, _, got = self.c.request(1, "GET", f"/v1/tenants/{t['id']}/users/{u['id']}")
                if status != 200:
                    errors.append((status, got))
                elif (got["id"], got["email"]) != (u["id"], u["email"]):
                    wrong.append((u["id"], got["id"]))
        threads = [threading.Thread(target=reader, args=(u,)) for u in users]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual((wrong, errors), ([], []))
        # Then load that keeps many forwards in flight at once: fewer messages than commands.
        out = subprocess.run(["wrk", "-t2", "-c48", "-d2s", "-H", "Authorization: Bearer " + ROOT,
                              f"http://127.0.0.1:{self.c.port(1)}/v1/tenants/{t['id']}/users/{users[0]['id']}"],
                             capture_output=True, text=True, timeout=60).stdout
        self.assertNotRegex(out, r"Non-2xx or 3xx responses", out)
        after = self.metric_values(1)
        forwarded = after['colony_cluster_forwarded_total{outcome="ok"}'] - \
            before.get('colony_cluster_forwarded_total{outcome="ok"}', 0)
        batches = after['colony_cluster_batches_total{direction="commands"}'] - \
            before.get('colony_cluster_batches_total{direction="commands"}', 0)
        self.assertGreaterEqual(forwarded, 24 * 25, out)
        self.assertLess(batches, forwarded * 0.8, (batches, forwarded, out))
        replies = self.metric_values(2)['colony_cluster_batches_total{direction="replies"}'] - \
            before2.get('colony_cluster_batches_total{direction="replies"}', 0)
        self.assertLess(replies, forwarded * 0.8, (replies, forwarded))
        print(f"\nbatching: {forwarded:.0f} forwards in {batches:.0f} command and {replies:.0f} reply messages",
              flush=True)

    def metric_values(self, k):
        conn = http.client.HTTPConnection("127.0.0.1", self.c.port(k), timeout=10)
        conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + ROOT})
        values = {}
        text = conn.getresponse().read().decode()
        conn.close()
        for line in text.splitlines():
            if line.startswith("colony_cluster_") and " " in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values


class Feed(ClusterCase):
    def test_the_feed_never_skips_or_repeats_an_event_while_three_nodes_commit(self):
        tenants = [self.c.new_tenant(k=1, owner=o)["id"] for o in (1, 2, 3)]
        for t in tenants:
            status, _, doc = self.c.request(1, "PATCH", f"/v1/tenants/{t}", {"plan": "enterprise"})
            self.assertEqual(status, 200, doc)
        stop, done_writing = threading.Event(), threading.Event()
        problems = []

        def writer(k, j):  # through node k, to every tenant: local commits and forwards
            i = 0
            while not stop.is_set():
                t = tenants[i % 3]
                status, _, doc = self.c.request(k, "POST", f"/v1/tenants/{t}/users",
                                                {"email": f"f{k}-{j}-{i}@example.com", "name": "F"})
                if status not in (201, 503):
                    problems.append((status, doc))
                i += 1

        def reader(path, seen):  # tails the feed through the nodes in turn until the writers are done and it is caught up
            after, k, empty_after_done = 0, 1, 0
            while empty_after_done < 2:
                status, _, page = self.c.request(k, "GET", f"{path}?after={after}&limit=500")
                if status != 200:
                    problems.append((path, status, page))
                    return
                for item in page["data"]:
                    seen.append((item["position"], item["event"]["id"], item["event"]["tenantId"]))
                after = page.get("nextAfter", after)
                if not page["data"] and done_writing.is_set():
                    empty_after_done += 1
                k = k % 3 + 1
        everything, one = [], []
        writers = [threading.Thread(target=writer, args=(k, j)) for k in (1, 2, 3) for j in range(2)]
        readers = [threading.Thread(target=reader, args=("/v1/events", everything)),
                   threading.Thread(target=reader, args=(f"/v1/tenants/{tenants[1]}/events", one))]
        for th in writers + readers:
            th.start()
        time.sleep(8)
        stop.set()
        for th in writers:
            th.join()
        done_writing.set()
        for th in readers:
            th.join(timeout=60)
        self.assertEqual(problems, [])
        ids = ",".join(f"'{t}'" for t in tenants)
        committed = {r[0] for r in psql(f"SELECT event_id FROM outbox WHERE tenant_id IN ({ids})")}
        self.assertGreater(len(committed), 300)  # the three nodes did write concurrently
        for seen, want in ((everything, committed),
                           (one, {r[0] for r in psql(f"SELECT event_id FROM outbox WHERE tenant_id = '{tenants[1]}'")})):
            positions = [p for p, _, _ in seen]
            self.assertEqual(positions, sorted(set(positions)), "positions out of order or repeated")
            got = [i for _, i, t in seen if t in tenants]
            self.assertEqual(len(got), len(set(got)), "an event was read twice")
            self.assertEqual(set(got), want, f"{len(want - set(got))} committed events never read")
        print(f"\nfeed: {len(committed)} events committed by three nodes, each read once, in position order",
              flush=True)


class ChoreHelpers:
    killed = ()

    def holders(self, chore):
        """The nodes not killed whose log says they run `chore` now."""
        out = []
        for k in (1, 2, 3):
            if k in self.killed:  # (a killed node can linger as a zombie: alive() is no proof)
                continue
            runs = False
            for line in self.c.log(k).splitlines():
                if line.endswith(f"chore={chore}") and "runs a chore" in line:
                    runs = "no longer runs" not in line
            if runs:
                out.append(k)
        return out

    def wait_one_holder(self, chore, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.holders(chore)) != 1:
            time.sleep(0.2)
        self.assertEqual(len(self.holders(chore)), 1, f"{chore}: {self.holders(chore)}")
        return self.holders(chore)[0]

    def tenant_once_served(self, k, owner):
        """A new tenant on `owner`, created through k once the dead node's shards are claimed."""
        deadline = time.time() + 15
        while True:
            try:
                return self.c.new_tenant(k=k, owner=owner)["id"]
            except AssertionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)

    def expire_trials(self, tenants, via):
        soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1)) + "Z"
        for t in tenants:
            status, _, doc = self.c.request(via, "PATCH", f"/v1/tenants/{t}", {"trialEndsAt": soon})
            self.assertEqual(status, 200, doc)
        deadline = time.time() + 15
        pending = set(tenants)
        while pending and time.time() < deadline:
            for t in list(pending):
                status, _, doc = self.c.request(via, "GET", f"/v1/tenants/{t}")
                if status == 200 and doc["status"] == "suspended":
                    pending.discard(t)
            time.sleep(0.2)
        self.assertEqual(pending, set(), "trial timers that did not fire")
        for t in tenants:  # one firing: one suspension
            types = [r[0] for r in psql(f"SELECT type FROM outbox WHERE tenant_id = '{t}' ORDER BY seq")]
            self.assertEqual(types.count("tenant.suspended"), 1, types)


class Chores(ChoreHelpers, ClusterCase):
    def test_each_chore_runs_on_one_node_and_moves_when_it_dies(self):
        timers = self.wait_one_holder("timers")
        webhooks = self.wait_one_holder("webhooks")
        # Trial timers of tenants owned by every node fire once (each at
        # its owner; the timers chore holder fires the unsharded ones).
        self.expire_trials([self.c.new_tenant(k=1, owner=o)["id"] for o in (1, 2, 3)], via=1)
        self.c.signal(timers, signal.SIGKILL)
        self.killed = (timers,)
        survivor = 1 if timers != 1 else 2
        after = self.wait_one_holder("timers", timeout=20)
        self.assertNotEqual(after, timers)
        self.expire_trials([self.tenant_once_served(survivor, o) for o in (1, 2, 3) if o != timers], via=survivor)
        print(f"\nchores: timers on node{timers}, then node{after}; webhooks on node{webhooks}", flush=True)


class Timers(ChoreHelpers, ClusterCase):
    """Durable timers per owned shard: each owner fires its own tenants'
    timers; a dead node's fire on its shards' new owners."""

    def fired(self):
        out = {}
        for k in (1, 2, 3):
            if k in self.killed:
                continue
            conn = http.client.HTTPConnection("127.0.0.1", self.c.port(k), timeout=10)
            conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + ROOT})
            body = conn.getresponse().read().decode()
            conn.close()
            out[k] = sum(float(line.split()[-1]) for line in body.splitlines()
                         if line.startswith("colony_timers_fired_total"))
        return out

    def test_each_owner_fires_its_tenants_timers_and_a_dead_nodes_fire_on_the_new_owners(self):
        before = self.fired()
        self.expire_trials([self.c.new_tenant(k=1, owner=o)["id"] for o in (1, 2, 3) for _ in range(2)], via=1)
        after = self.fired()
        self.assertEqual({k: after[k] - before[k] for k in after}, {1: 2, 2: 2, 3: 2})  # at the owners, once
        # Timers of node2's tenants, due in 6 s; node2 dies before they are.
        doomed = [self.c.new_tenant(k=1, owner=2)["id"] for _ in range(3)]
        soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 6)) + "Z"
        for t in doomed:
            status, _, doc = self.c.request(1, "PATCH", f"/v1/tenants/{t}", {"trialEndsAt": soon})
            self.assertEqual(status, 200, doc)
        before = self.fired()
        self.c.signal(2, signal.SIGKILL)
        self.killed = (2,)
        deadline = time.time() + 30
        while time.time() < deadline:
            done = [t for t in doomed if (self.c.request(1, "GET", f"/v1/tenants/{t}")[2] or {}).get("status")
                    == "suspended"]
            if len(done) == len(doomed):
                break
            time.sleep(0.3)
        self.assertEqual(len(done), len(doomed), "timers of the dead node's tenants did not fire")
        after = self.fired()
        self.assertEqual(sum(after[k] - before[k] for k in after), len(doomed))  # on nodes 1 and 3, once each
        new_owners = {self.c.owner(t)["owner"] for t in doomed}
        self.assertTrue(new_owners <= {"node1", "node3"}, new_owners)
        for t in doomed:
            types = [r[0] for r in psql(f"SELECT type FROM outbox WHERE tenant_id = '{t}' ORDER BY seq")]
            self.assertEqual(types.count("tenant.suspended"), 1, types)


class KillOwner(ClusterCase):
    def test_kill_9_of_an_owner_under_write_load(self):
        victim = 2
        mine = [self.c.new_tenant(k=1, owner=victim)["id"] for _ in range(3)]
        acked, errors, stop = [], [], threading.Event()
        lock = threading.Lock()

        def writer(k):
            # Tenant creations: their ids are minted at the node that takes the
            # request and hash to any shard, so about a third land on the victim.
            n = 0
            while not stop.is_set():
                key, slug = str(uuid.uuid4()), f"w{k}-{n}-{uuid.uuid4().hex[:8]}"
                deadline = time.time() + 45
                while time.time() < deadline and not stop.is_set():  # a client retrying with its key
                    try:
                        status, _, t = self.c.request(k, "POST", "/v1/tenants", {"name": "W", "slug": slug},
                                                      {"Idempotency-Key": key})
                    except OSError as e:
                        status, t = 0, str(e)
                    if status == 201:
                        with lock:
                            acked.append((t["id"], slug))
                        break
                    # 409 "in use": the first attempt's outcome is unknown (the
                    # owner died with it), so its key stays taken until it commits
                    # or goes stale; retried like a 503.
                    in_use = status == 409 and "idempotency-key-in-use" in str(t)
                    if status not in (503, 0) and not in_use:
                        with lock:
                            errors.append((status, t))
                        break
                    time.sleep(0.2)
                n += 1

        threads = [threading.Thread(target=writer, args=(k,)) for k in (1, 3)]
        for t in threads:
            t.start()
        time.sleep(2)
        before = len(acked)
        t0 = time.time()
        self.c.signal(victim, signal.SIGKILL)
        back = {}
        while len(back) < len(mine) and time.time() - t0 < 40:
            for tid in mine:
                if tid not in back:
                    status, _, _ = self.c.request(1, "PATCH", f"/v1/tenants/{tid}", {"name": "after"})
                    if status == 200:
                        back[tid] = time.time() - t0
            time.sleep(0.1)
        # The writers go on until writes are acknowledged again. A creation
        # that was in flight to the victim has an unknown outcome, so its key
        # stays taken (409 in use) until it goes stale, twice the request
        # timeout after the first attempt; the writer retries it like a client.
        while len(acked) <= before + 20 and time.time() - t0 < 60:
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertGreater(before, 0)
        self.assertGreater(len(acked), before)
        self.assertEqual(len(back), len(mine), f"tenants of the dead node not served within 40 s: {back}")
        worst = max(back.values())
        print(f"\nfailover after kill -9: {sorted(round(v, 2) for v in back.values())} s", flush=True)
        self.assertLessEqual(worst, FAILOVER_TARGET_S)
        # Every acknowledged write is in PostgreSQL, once; some were the victim's.
        ids = ",".join(f"'{tid}'" for tid, _ in acked)
        rows = psql(f"SELECT id, slug FROM tenants WHERE id IN ({ids})")
        self.assertEqual(sorted(r[0] for r in rows), sorted(tid for tid, _ in acked))
        self.assertEqual(sorted(r[1] for r in rows), sorted(slug for _, slug in acked))
        on_victim = [tid for tid, _ in acked if self.c.owner(tid)["owner"] != f"node{victim}"]
        self.assertEqual(len(on_victim), len(acked))  # the dead node owns nothing now
        print(f"{len(acked)} acknowledged creations, all in PostgreSQL", flush=True)
        view = self.c.view(1)
        dead = [m for m in view["members"] if m["nodeName"] == f"node{victim}"]
        self.assertEqual(dead[0]["status"], "dead")
        self.assertEqual(dead[0]["shards"], 0)
        self.assertEqual(sum(m["shards"] for m in view["members"]), 4096)


class FrozenOwner(ClusterCase):
    def test_a_frozen_owner_is_replaced_and_commits_nothing_after_it_wakes(self):
        victim = 2
        t = self.c.new_tenant(k=1, owner=victim)
        status, _, u = self.c.request(1, "POST", f"/v1/tenants/{t['id']}/users", {"email": "z@example.com", "name": "before"})
        self.assertEqual(status, 201, u)
        # A write that is inside the owner's user entity (stalled there) when the node freezes.
        token = "zombie-" + uuid.uuid4().hex[:8]
        result = {}

        def stalled():
            try:
                result["answer"] = self.c.request(victim, "PATCH", f"/v1/tenants/{t['id']}/users/{u['id']}",
                                                  {"name": token}, {"X-Colony-Fault": "stall=3000"}, timeout=60)
            except OSError as e:
                result["answer"] = (0, {}, str(e))

        th = threading.Thread(target=stalled)
        th.start()
        time.sleep(0.5)
        t0 = time.time()
        self.c.signal(victim, signal.SIGSTOP)
        served = None
        while time.time() - t0 < 40:
            status, _, got = self.c.request(1, "GET", f"/v1/tenants/{t['id']}/users/{u['id']}")
            if status == 200:
                served = time.time() - t0
                break
            time.sleep(0.2)
        self.assertIsNotNone(served, "the frozen node's tenant was not served by the others")
        print(f"\nfailover after SIGSTOP: {served:.2f} s", flush=True)
        self.assertLessEqual(served, FAILOVER_TARGET_S)
        self.assertEqual(got["name"], "before")
        dead_at = psql(f"SELECT extract(epoch FROM dead_at) FROM cluster_member WHERE cluster_id = '{self.c.name}' "
                       f"AND node_name = 'node{victim}'")
        self.assertEqual(len(dead_at), 1)
        self.assertNotEqual(dead_at[0][0], "")
        time.sleep(max(0.0, 12 - (time.time() - t0)))  # longer than the lease
        self.c.signal(victim, signal.SIGCONT)
        deadline = time.time() + 10
        while self.c.alive(victim) and time.time() < deadline:
            time.sleep(0.1)
        self.assertFalse(self.c.alive(victim), "the zombie did not exit after SIGCONT")
        log = self.c.log(victim)
        self.assertRegex(log, r"lease ran out|declared dead in the membership table")
        th.join(timeout=30)
        self.assertNotIn(result["answer"][0], (200, 201), result)
        # Nothing of the stalled write reached PostgreSQL.
        rows = psql(f"SELECT name, version FROM users WHERE id = '{u['id']}'")
        self.assertEqual(rows, [["before", "1"]])
        status, _, got = self.c.request(3, "GET", f"/v1/tenants/{t['id']}/users/{u['id']}")
        self.assertEqual((status, got["name"]), (200, "before"))


class ShortFreeze(ClusterCase):
    def test_a_two_second_freeze_changes_no_owner(self):
        # S4: shorter than the probes' window (3 misses of 1 s) and the lease.
        t = self.c.new_tenant(k=1, owner=2)
        before = self.c.owner(t["id"])
        incarnation = next(m["incarnation"] for m in self.c.view(1)["members"] if m["nodeName"] == "node2")
        self.c.signal(2, signal.SIGSTOP)
        time.sleep(2)
        self.c.signal(2, signal.SIGCONT)
        time.sleep(5)  # the probes' and the votes' window has gone by
        self.assertTrue(self.c.alive(2))
        for k in (1, 3):
            view = self.c.view(k)
            node2 = [m for m in view["members"] if m["nodeName"] == "node2"]
            self.assertEqual([(m["incarnation"], m["status"]) for m in node2], [(incarnation, "active")], view)
            self.assertEqual(self.c.owner(t["id"], k), before)  # same owner, same epoch
        status, _, doc = self.c.request(1, "PATCH", f"/v1/tenants/{t['id']}", {"name": "after the freeze"})
        self.assertEqual(status, 200, doc)
        rows = psql(f"SELECT count(*) FROM cluster_member WHERE cluster_id = '{self.c.name}' AND status = 4")
        self.assertEqual(rows, [["0"]])  # nobody was declared dead


class LeaseInDoubt(ClusterCase):
    # The peers' probes are lenient here, so that only the node's own lease
    # decides (nobody votes it dead while it is frozen).
    extra = ("--cluster.missed-probes", "30")

    def test_a_node_that_fenced_itself_exits_even_if_a_renewal_gets_through_later(self):
        # Frozen for 9 s after its last renewal: on waking, its watchdog finds it
        # older than lease - 2 s and fences it; its next renewal still gets
        # through (the lease of 10 s has not run out in the database). It
        # must exit at the lease anyway: a fenced node that stayed would own
        # its shards and serve none of them.
        t = self.c.new_tenant(k=1, owner=2)
        # Frozen until 9 s after its last renewal (the database's clock, this machine's).
        since = float(psql(f"SELECT extract(epoch FROM now() - renewed_at) FROM cluster_member "
                           f"WHERE cluster_id = '{self.c.name}' AND node_name = 'node2' AND status < 4")[0][0])
        self.c.signal(2, signal.SIGSTOP)
        time.sleep(max(0.0, 9.0 - since - 0.05))
        self.c.signal(2, signal.SIGCONT)
        t0 = time.time()
        while self.c.alive(2) and time.time() - t0 < 10:
            time.sleep(0.1)
        log = self.c.log(2)
        self.assertIn("this node stops serving", log)
        self.assertFalse(self.c.alive(2), "a fenced node stayed")
        self.assertIn("the lease ran out", log)
        back = None
        while time.time() - t0 < 40:
            if self.c.request(1, "PATCH", f"/v1/tenants/{t['id']}", {"name": "elsewhere"})[0] == 200:
                back = time.time() - t0
                break
            time.sleep(0.2)
        self.assertIsNotNone(back, "the fenced node's tenant was not served by the others")


class LoseTwo(ClusterCase):
    def test_the_last_node_takes_every_shard_when_two_die_together(self):
        # S11: no second voter is left, so the leases' expiry declares them dead.
        mine = [self.c.new_tenant(k=1, owner=k)["id"] for k in (2, 3)]
        t0 = time.time()
        self.c.signal(2, signal.SIGKILL)
        self.c.signal(3, signal.SIGKILL)
        back = {}
        while len(back) < len(mine) and time.time() - t0 < 40:
            for tid in mine:
                if tid not in back and self.c.request(1, "PATCH", f"/v1/tenants/{tid}", {"name": "alone"})[0] == 200:
                    back[tid] = time.time() - t0
            time.sleep(0.2)
        print(f"\nfailover of two nodes: {sorted(round(v, 2) for v in back.values())} s", flush=True)
        self.assertEqual(len(back), 2, back)
        self.assertLessEqual(max(back.values()), FAILOVER_TARGET_S)
        deadline = time.time() + 30
        while time.time() < deadline:
            live = [m for m in self.c.view(1)["members"] if m["status"] != "dead"]
            if [(m["nodeName"], m["shards"]) for m in live] == [("node1", 4096)]:
                break
            time.sleep(0.3)
        self.assertEqual([(m["nodeName"], m["shards"]) for m in live], [("node1", 4096)])


class ScaleOut(ClusterCase):
    def test_a_fourth_node_takes_only_its_share(self):
        # S10: shards move only to the newcomer, about a quarter of them.
        before = {m["nodeName"]: m["shards"] for m in self.c.view(1)["members"]}
        tenants = [self.c.new_tenant(k=1)["id"] for _ in range(24)]
        owners = {tid: self.c.owner(tid)["owner"] for tid in tenants}
        self.c.n = 4  # the launcher starts node4 on the next ports; stop() stops it too
        self.c.restart(4)
        self.c.wait_converged(timeout=90)
        # Hand-offs go in bounded rounds, slower on a loaded machine: wait
        # until the counts have not changed for 5 s.
        deadline, last, since = time.time() + 90, None, time.time()
        while time.time() < deadline:
            view = self.c.view(1)
            after = {m["nodeName"]: m["shards"] for m in view["members"] if m["status"] == "active"}
            if after != last:
                last, since = after, time.time()
            elif time.time() - since >= 5:
                break
            time.sleep(0.3)
        self.assertEqual(sorted(after), ["node1", "node2", "node3", "node4"])
        self.assertEqual(sum(after.values()), 4096)
        moved = sum(before[n] - after[n] for n in before)
        self.assertEqual(moved, after["node4"])  # every move went to node4
        self.assertTrue(all(after[n] <= before[n] for n in before), (before, after))
        self.assertLessEqual(after["node4"], 4096 / 4 * 1.05)
        self.assertGreaterEqual(after["node4"], 4096 / 4 * 0.95)
        for tid in tenants:  # each tenant kept its owner or moved to node4, and answers through node1
            now = self.c.owner(tid)["owner"]
            self.assertIn(now, (owners[tid], "node4"))
            status, _, doc = self.c.request(1, "PATCH", f"/v1/tenants/{tid}", {"name": "rebalanced"})
            self.assertEqual(status, 200, doc)


class SplitBrain(ClusterCase):
    def test_a_forced_second_owner_fences_the_first(self):
        t = self.c.new_tenant(k=1)
        old = self.node_of(t["id"])
        new = 1 + old % 3
        before = self.c.owner(t["id"])
        status, _, claim = self.c.request(new, "POST", f"/v1/cluster/debug/claim/{t['id']}")
        self.assertEqual(status, 200, claim)
        self.assertEqual(claim["epoch"], before["epoch"] + 1)
        # The old owner still thinks it owns the shard (its view is up to 2 s old):
        # its writes must be refused by the fence, never acknowledged and lost.
        answers = []
        for i in range(10):
            status, _, doc = self.c.request(old, "PATCH", f"/v1/tenants/{t['id']}", {"name": f"old-{i}"})
            answers.append((status, doc))
        refused = [a for a in answers if a[0] == 503 and "owned by another node" in a[1]["detail"]]
        unknown = [a for a in answers if a[0] == 503 and a not in refused]  # timed out: may have committed
        ok = [a for a in answers if a[0] == 200]
        self.assertEqual(len(refused) + len(unknown) + len(ok), len(answers), answers)
        self.assertGreater(len(refused), 0, "no write reached the old owner's fence")
        rows = psql(f"SELECT name, version FROM tenants WHERE id = '{t['id']}'")
        # Every acknowledged write is in, no refused one is.
        self.assertGreaterEqual(int(rows[0][1]), t["version"] + len(ok), (rows, answers))
        self.assertLessEqual(int(rows[0][1]), t["version"] + len(ok) + len(unknown), (rows, answers))
        self.assertNotIn(rows[0][0], {f"old-{i}" for i, a in enumerate(answers) if a in refused})
        if not unknown:
            self.assertEqual(rows[0][0], ok[-1][1]["name"] if ok else "T")
        # Once the old owner re-reads the table it forwards to the new one.
        deadline = time.time() + 10
        while time.time() < deadline:
            status, hdrs, doc = self.c.request(old, "PATCH", f"/v1/tenants/{t['id']}", {"name": "through-new"})
            if status == 200:
                break
            time.sleep(0.2)
        self.assertEqual(status, 200, doc)
        # The cluster heals: the claimer hands the shard back to its desired
        # owner (a later epoch still), and every node agrees on where it is.
        self.c.wait_converged()
        places = [self.c.owner(t["id"], k) for k in (1, 2, 3)]
        self.assertEqual(len({(p["owner"], p["epoch"]) for p in places}), 1, places)
        self.assertGreaterEqual(places[0]["epoch"], claim["epoch"])
        self.assertEqual(psql(f"SELECT name FROM tenants WHERE id = '{t['id']}'"), [["through-new"]])


class Restart(ClusterCase):
    def test_a_node_restarted_under_its_name_rejoins_as_a_new_incarnation_and_gets_its_shards_back(self):
        view = self.c.view(1)
        old = next(m for m in view["members"] if m["nodeName"] == "node3")
        t = self.c.new_tenant(k=1, owner=3)
        self.c.signal(3, signal.SIGKILL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.c.request(1, "GET", f"/v1/tenants/{t['id']}")[0] == 200:
                break
            time.sleep(0.2)
        self.c.restart(3)
        deadline = time.time() + 90  # a convergence wait (slow on a loaded machine), not a timing target
        while time.time() < deadline:  # hand-offs back to node3 go in bounded rounds
            view = self.c.wait_converged()
            mine = [m for m in view["members"] if m["nodeName"] == "node3"]
            live = [m for m in mine if m["status"] == "active"]
            if len(live) == 1 and live[0]["shards"] == old["shards"]:
                break
            time.sleep(0.3)
        self.assertEqual(len(live), 1, mine)
        self.assertNotEqual(live[0]["incarnation"], old["incarnation"])
        self.assertEqual(live[0]["shards"], old["shards"])  # rendezvous hashing by name: the same shards
        self.assertTrue(any(m["incarnation"] == old["incarnation"] and m["status"] == "dead" for m in mine), mine)
        self.assertEqual(self.c.owner(t["id"])["owner"], "node3")
        status, hdrs, doc = self.c.request(1, "PATCH", f"/v1/tenants/{t['id']}", {"name": "back"})
        self.assertEqual(status, 200, doc)
        # One live incarnation per name, by the database.
        rows = psql(f"SELECT count(*) FROM cluster_member WHERE cluster_id = '{self.c.name}' AND node_name = 'node3' "
                    "AND status < 4")
        self.assertEqual(rows, [["1"]])


class Drain(ClusterCase):
    def test_sigterm_hands_the_shards_over_and_leaves(self):
        t = self.c.new_tenant(k=1, owner=2)
        pid = self.c.pid(2)
        t0 = time.time()
        os.kill(pid, signal.SIGTERM)
        while self.c.alive(2) and time.time() - t0 < 30:
            time.sleep(0.1)
        self.assertFalse(self.c.alive(2))
        self.assertIn("left the cluster", self.c.log(2))
        deadline = time.time() + 5
        while time.time() < deadline:  # node1's view catches up (the leaver tells it)
            view = self.c.view(1)
            gone = [m for m in view["members"] if m["nodeName"] == "node2"]
            if gone[0]["status"] == "dead":
                break
            time.sleep(0.1)
        self.assertEqual((gone[0]["status"], gone[0]["deadReason"], gone[0]["shards"]), ("dead", "left", 0))
        self.assertEqual(sum(m["shards"] for m in view["members"]), 4096)
        status, _, doc = self.c.request(3, "PATCH", f"/v1/tenants/{t['id']}", {"name": "moved"})
        self.assertEqual(status, 200, doc)
        self.assertLess(time.time() - t0, 15)


class Revocation(ClusterCase):
    # A long cache TTL: only the broadcast can end the key on the other nodes in time.
    extra = ("--auth.api-key-cache-ttl", "60s")

    def test_a_key_revoked_through_one_node_stops_working_on_every_node_within_a_second(self):
        t = self.c.new_tenant(k=1, owner=3)
        base = f"/v1/tenants/{t['id']}"
        status, _, created = self.c.request(1, "POST", base + "/api-keys", {"name": "ci", "roles": ["admin"]})
        self.assertEqual(status, 201, created)
        key = {"Authorization": "Bearer " + created["key"]}
        for k in (1, 2, 3):  # each node looks it up and caches it
            for _ in range(3):
                self.assertEqual(self.c.request(k, "GET", base, headers=key)[0], 200)
        status, _, _ = self.c.request(1, "DELETE", f"{base}/api-keys/{created['id']}")
        self.assertEqual(status, 204)
        t0 = time.time()
        ended = {}
        while len(ended) < 3 and time.time() - t0 < 5:
            for k in (1, 2, 3):
                if k not in ended and self.c.request(k, "GET", base, headers=key)[0] == 401:
                    ended[k] = time.time() - t0
            time.sleep(0.02)
        print(f"\nrevoked key refused after {ended} s", flush=True)
        self.assertEqual(sorted(ended), [1, 2, 3])
        self.assertLess(max(ended.values()), 1.0)
        # A new key still works everywhere (the broadcast ended only the revoked one).
        status, _, other = self.c.request(2, "POST", base + "/api-keys", {"roles": ["viewer"]})
        self.assertEqual(status, 201, other)
        for k in (1, 2, 3):
            self.assertEqual(self.c.request(k, "GET", base, headers={"Authorization": "Bearer " + other["key"]})[0], 200)


class Limits(ClusterCase):
    """Rate limits and the monthly quota hold cluster-wide: each tenant's
    buckets and meter are its owner's, whichever node a call reaches."""
    PLANS = """[colony.plans]
free = { max-users = 5, requests-per-second = 20, burst = 40 }
metered = { api-calls-per-month = 60, requests-per-second = 1000, burst = 1000 }
"""

    def setUp(self):
        import tempfile
        self.conf_dir = tempfile.mkdtemp(prefix="colony-limits-")
        conf = os.path.join(self.conf_dir, "colony.conf")
        with open(conf, "w") as f:
            f.write(self.PLANS)
        self.c = Cluster(3, ("--config", conf, "--ratelimit.credential-percent", "50", "--quota.flush-interval", "200ms"))
        self.c.wait_converged()

    def keys(self, tid, n):
        out = []
        for _ in range(n):
            status, _, k = self.c.request(1, "POST", f"/v1/tenants/{tid}/api-keys", {"roles": ["admin"]})
            self.assertEqual(status, 201, k)
            out.append({"Authorization": "Bearer " + k["key"]})
        return out

    def hammer(self, tid, keys, seconds=10, per_node=3, until=None):
        """GETs of the tenant through all three nodes; (answers by status, by node), the duration."""
        counts, lock, stop = {}, threading.Lock(), threading.Event()

        def run(k, i):
            n = 0
            while not stop.is_set():
                status, _, doc = self.c.request(k, "GET", f"/v1/tenants/{tid}", headers=keys[(i + n) % len(keys)])
                kind = status if status != 429 else doc["type"].rsplit("/", 1)[-1]
                with lock:
                    counts[(kind, k)] = counts.get((kind, k), 0) + 1
                n += 1

        threads = [threading.Thread(target=run, args=(k, i)) for k in (1, 2, 3) for i in range(per_node)]
        t0 = time.time()
        for t in threads:
            t.start()
        deadline = t0 + seconds
        while time.time() < deadline and not (until and until(counts)):
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        return counts, time.time() - t0

    def check_rate(self, counts, took, rate, burst):
        allowed = sum(n for (kind, _), n in counts.items() if kind == 200)
        limited = sum(n for (kind, _), n in counts.items() if kind == "rate-limited")
        expected = burst + rate * took
        print(f"\n{allowed} allowed, {limited} limited in {took:.1f} s; expected {expected:.0f}; "
              f"by node {sorted((k, n) for (kind, k), n in counts.items() if kind == 200)}", flush=True)
        self.assertEqual(set(kind for kind, _ in counts), {200, "rate-limited"})
        self.assertGreater(limited, allowed)  # offered well above the rate
        self.assertTrue(all(counts.get((200, k), 0) > 0 for k in (1, 2, 3)))  # every node let some through
        self.assertLessEqual(abs(allowed - expected), 0.1 * expected, counts)

    def test_one_credential_gets_its_share_of_the_rate_across_three_nodes(self):
        tid = self.c.new_tenant(k=1, owner=2)["id"]
        counts, took = self.hammer(tid, self.keys(tid, 1))
        self.check_rate(counts, took, rate=10, burst=20)  # 50 % of 20/s and of 40

    def test_a_tenant_gets_its_plan_rate_across_three_nodes_and_three_credentials(self):
        tid = self.c.new_tenant(k=1, owner=3)["id"]
        counts, took = self.hammer(tid, self.keys(tid, 3))
        self.check_rate(counts, took, rate=20, burst=40)  # each credential alone would allow 10/s + 20

    def test_the_monthly_quota_is_counted_once_across_three_nodes(self):
        status, _, t = self.c.request(1, "POST", "/v1/tenants", {"name": "Q", "slug": "q-" + uuid.uuid4().hex[:10],
                                                                 "plan": "metered"})
        self.assertEqual(status, 201, t)
        keys = self.keys(t["id"], 1)

        def all_refused(counts):
            return all(counts.get(("quota-exceeded", k), 0) >= 3 for k in (1, 2, 3))

        counts, _ = self.hammer(t["id"], keys, seconds=30, per_node=2, until=all_refused)
        allowed = sum(n for (kind, _), n in counts.items() if kind == 200)
        print(f"\nquota 60: {allowed} allowed, by node {sorted(counts.items(), key=str)}", flush=True)
        self.assertTrue(all_refused(counts), counts)
        self.assertEqual(allowed, 60)
        status, _, usage = self.c.request(2, "GET", f"/v1/tenants/{t['id']}/usage")
        self.assertEqual(status, 200, usage)
        deadline = time.time() + 5  # the meter writes in batches
        while usage["usage"]["apiCallsThisMonth"] < 60 and time.time() < deadline:
            time.sleep(0.2)
            usage = self.c.request(2, "GET", f"/v1/tenants/{t['id']}/usage")[2]
        self.assertEqual(usage["usage"]["apiCallsThisMonth"], 60)


class Handshake(ClusterCase):
    nodes = 2
    extra = ("--cluster.secret", "right-secret", "--cluster.join-timeout", "3s")

    def test_a_node_without_the_cluster_secret_is_refused_and_dropped(self):
        self.c.env["COLONYD_ARGS"] = self.c.env["COLONYD_ARGS"].replace("right-secret", "wrong-secret")
        try:
            self.c.restart(3)  # node3: the same cluster name and database, another secret
        except subprocess.CalledProcessError:
            pass  # it may be gone before it ever reports ready
        deadline = time.time() + 30
        while self.c.alive(3) and time.time() < deadline:
            time.sleep(0.2)
        self.assertFalse(self.c.alive(3), "a node with the wrong secret kept running")
        self.assertIn("refused a peer's hello", self.c.log(1) + self.c.log(2))
        self.assertIn("cannot reach every active member", self.c.log(3))
        rows = psql(f"SELECT status FROM cluster_member WHERE cluster_id = '{self.c.name}' AND node_name = 'node3'")
        self.assertEqual(rows, [["4"]])
        view = self.c.view(1)
        self.assertEqual(sum(m["shards"] for m in view["members"] if m["status"] == "active"), 4096)
        self.assertEqual(sorted(m["nodeName"] for m in view["members"] if m["status"] == "active"), ["node1", "node2"])


if __name__ == "__main__":
    unittest.main()
