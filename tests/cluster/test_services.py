"""Cluster-wide services on three nodes sharing one PostgreSQL database
(docs/clustering.md, "Cluster-wide services"): the event feed while three
nodes commit; chores on one node; durable timers and webhook deliveries per
owned shard, taken over when a node dies; API-key revocation broadcast to
every node; rate limits and the monthly quota at the tenant's owner."""
import os
import signal
import threading
import time
import unittest
import uuid

from cluster_kit import Cluster, ClusterCase, metric, psql, wait_for


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
        return {k: metric(self.c, k, "colony_timers_fired_total") for k in (1, 2, 3) if k not in self.killed}

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


class Hooks:
    """Webhook receiver on loopback: /hook/<tenant id>; answers 500 for the
    tenants in `failing`, else 204; records (tenant, event id, answer)."""

    def __init__(self):
        import http.server
        self.failing, self.got, lock = set(), [], threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                tid = self.path.rsplit("/", 1)[-1]
                code = 500 if tid in outer.failing else 204
                with lock:
                    outer.got.append((tid, self.headers["Colony-Event-Id"], code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self, tid):
        """Event ids answered 2xx for `tid`, with how often."""
        out = {}
        for t, e, code in list(self.got):
            if t == tid and code == 204:
                out[e] = out.get(e, 0) + 1
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Webhooks(ClusterCase):
    """Deliveries per owned shard: each owner sends its tenants' deliveries,
    once each; a dead node's pending ones are sent by the new owners."""
    extra = ("--webhooks.allow-private-targets", "true", "--webhooks.retry-base", "200ms",
             "--webhooks.max-attempts", "30")

    def attempts(self, killed=()):
        out = {}
        for k in (1, 2, 3):
            if k in killed:
                continue
            for outcome in ("delivered", "retry", "dead"):
                out[(k, outcome)] = metric(self.c, k, "colony_webhook_attempts_total", f'outcome="{outcome}"')
        return out

    def tenant_with_hook(self, owner):
        tid = self.c.new_tenant(k=1, owner=owner, plan="enterprise")["id"]
        status, _, doc = self.c.request(1 + owner % 3, "POST", f"/v1/tenants/{tid}/webhooks",
                                        {"url": self.hooks.url + tid, "eventTypes": ["user.created"]})
        self.assertEqual(status, 201, doc)
        return tid

    def users(self, tid, n):
        ids = set()
        for i in range(n):  # through every node in turn
            status, _, doc = self.c.request(1 + i % 3, "POST", f"/v1/tenants/{tid}/users",
                                            {"email": f"w{i}-{uuid.uuid4().hex[:6]}@example.com", "name": "W"})
            self.assertEqual(status, 201, doc)
        for r in psql(f"SELECT event_id FROM outbox WHERE tenant_id = '{tid}' AND type = 'user.created'"):
            ids.add(r[0])
        self.assertEqual(len(ids), n)
        return ids

    def wait_delivered(self, want, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(set(self.hooks.delivered(t)) >= ids for t, ids in want.items()):
                return
            time.sleep(0.2)
        self.fail({t: len(ids - set(self.hooks.delivered(t))) for t, ids in want.items()})

    def test_each_owner_delivers_its_tenants_events_once_and_a_dead_nodes_are_taken_over(self):
        self.hooks = Hooks()
        self.addCleanup(self.hooks.close)
        tenants = {o: self.tenant_with_hook(o) for o in (1, 2, 3)}
        before = self.attempts()
        want = {tenants[o]: self.users(tenants[o], 8) for o in (1, 2, 3)}
        self.wait_delivered(want)
        time.sleep(1)  # a second attempt would show now
        after = self.attempts()
        for o, tid in tenants.items():  # once each, by the owner
            self.assertEqual(self.hooks.delivered(tid), {e: 1 for e in want[tid]})
            self.assertEqual({k: after[(k, "delivered")] - before[(k, "delivered")] for k in (1, 2, 3)}[o], 8)
        self.assertEqual(sum(after[(k, "delivered")] - before[(k, "delivered")] for k in (1, 2, 3)), 24)
        # node2's tenant's endpoint fails; node2 retries; node2 dies; the
        # endpoint recovers: the new owners deliver each event once.
        doomed = self.tenant_with_hook(2)
        self.hooks.failing.add(doomed)
        ids = self.users(doomed, 5)
        wait_for("node2 attempts each event", lambda: len({e for t, e, code in list(self.hooks.got)
                                                          if t == doomed and code == 500}) == 5, 20)
        wait_for("node2 counts its failed attempts", lambda: metric(
            self.c, 2, "colony_webhook_attempts_total", 'outcome="retry"') >= after[(2, "retry")] + 5, 10)
        before = self.attempts(killed=(2,))
        self.c.signal(2, signal.SIGKILL)
        self.hooks.failing.discard(doomed)
        self.wait_delivered({doomed: ids}, timeout=45)
        time.sleep(1)
        after = self.attempts(killed=(2,))
        self.assertEqual(self.hooks.delivered(doomed), {e: 1 for e in ids})
        self.assertEqual(sum(after[(k, "delivered")] - before[(k, "delivered")] for k in (1, 3)), 5)
        new_owner = self.c.owner(doomed)["owner"]
        self.assertIn(new_owner, ("node1", "node3"))
        self.assertEqual(psql(f"SELECT count(*) FROM webhook_deliveries WHERE tenant_id = '{doomed}' AND "
                              "status = 'delivered'"), [["5"]])
        print(f"\nwebhooks: 24 deliveries by their owners, once each; the dead node's 5 delivered by "
              f"{new_owner}", flush=True)


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



if __name__ == "__main__":
    unittest.main()
