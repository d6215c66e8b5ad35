"""Operating a cluster of three nodes under load (docs/clustering.md,
"Operations"): an operator's drain and undrain, a rolling restart, and a
scale-out to four nodes.
Clients retry a 503 after Retry-After with the same Idempotency-Key and go
to another node when one refuses connections, as behind a load balancer;
at the end every acknowledged write is checked in PostgreSQL."""
import signal
import time
import unittest

from cluster_kit import Cluster, Load, hrw_owners, psql, shard_epochs, shard_owners, wait_for

DRAIN_TARGET_S = 25
SCALE_OUT_TARGET_S = 60
HANDOFF_MAX = 64  # cluster.handoff-max's default


def shards_of(view):
    return {m["nodeName"]: m["shards"] for m in view["members"] if m["status"] != "dead"}


class OperationsCase(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(3)
        self.c.wait_converged()

    def tearDown(self):
        self.c.stop()

    def wait(self, what, pred, timeout):
        return wait_for(what, pred, timeout)

    def tenants(self, per_node=3):
        # enterprise: no user limit, so every write can be acknowledged
        return [self.c.new_tenant(k=1, owner=o, plan="enterprise")["id"] for o in (1, 2, 3) for _ in range(per_node)]


class OperatorDrain(OperationsCase):
    def test_drain_moves_every_shard_off_a_running_node_and_undrain_brings_them_back(self):
        tenants = self.tenants()
        before = self.c.view(1)
        mine = shards_of(before)["node2"]
        epochs0 = shard_epochs(self.c.name)
        load = Load(self.c, tenants).start()
        try:
            time.sleep(2)
            t0 = time.time()
            status, _, doc = self.c.request(1, "POST", "/v1/cluster/members/node2/drain")  # asked through another node
            self.assertEqual((status, doc), (202, {"nodeName": "node2", "status": "draining"}))

            def drained():
                v = self.c.view(3)
                m = [m for m in v["members"] if m["nodeName"] == "node2"][0]
                return m if (m["shards"], m["targetShards"], v["shardsMoving"]) == (0, 0, 0) else None

            m = self.wait("node2 hands off every shard", drained, DRAIN_TARGET_S)
            took = time.time() - t0
            self.assertEqual((m["status"], m["drainedBy"], m["deadReason"]), ("draining", "operator", None))
            self.assertTrue(self.c.alive(2))
            self.assertEqual(shard_owners(self.c.name), hrw_owners(["node1", "node3"]))
            epochs = shard_epochs(self.c.name)
            moved = [s for s in epochs0 if epochs[s] != epochs0[s]]
            self.assertEqual(len(moved), mine)  # only node2's shards moved, once each
            self.assertEqual(max(epochs[s] - epochs0[s] for s in moved), 1)
            self.assertIn("an operator drains this node", self.c.log(2))
            # Still a working entry point: it forwards everything.
            for tid in tenants:
                self.assertNotEqual(self.c.owner(tid, k=2)["owner"], "node2")
                status, hdrs, doc = self.c.request(2, "PATCH", f"/v1/tenants/{tid}", {"name": "drained"})
                self.assertEqual(status, 200, doc)
                self.assertEqual(hdrs["X-Colony-Node"], "node2")  # the node that answers
            # Not ready while drained: a load balancer stops sending to it.
            status, _, _ = self.c.request(2, "GET", "/readyz")
            self.assertEqual(status, 503)
            # Again: nothing more to do. The other two cannot both go: the
            # last active member keeps its shards.
            status, _, doc = self.c.request(3, "POST", "/v1/cluster/members/node2/drain")
            self.assertEqual((status, doc["status"]), (202, "draining"))
            status, _, doc = self.c.request(1, "POST", "/v1/cluster/members/node3/drain")
            self.assertEqual(status, 202, doc)
            status, _, doc = self.c.request(1, "POST", "/v1/cluster/members/node1/drain")
            self.assertEqual((status, doc["type"].rsplit("/", 1)[-1]), (409, "member-state-conflict"), doc)
            self.assertIn("last active member", doc["detail"])
            self.wait("node1 owns every shard", lambda: shards_of(self.c.view(1))["node1"] == 4096, DRAIN_TARGET_S)
            status, _, doc = self.c.request(1, "POST", "/v1/cluster/members/nobody/drain")
            self.assertEqual(status, 404, doc)
            self.assertEqual(doc["type"].rsplit("/", 1)[-1], "member-not-found")
            # Undrain both; an undrain of an active member changes nothing.
            for k, name in ((3, "node2"), (2, "node3")):
                status, _, doc = self.c.request(k, "POST", f"/v1/cluster/members/{name}/undrain")
                self.assertEqual((status, doc), (202, {"nodeName": name, "status": "active"}))
            status, _, doc = self.c.request(1, "POST", "/v1/cluster/members/node1/undrain")
            self.assertEqual((status, doc["status"]), (200, "active"))
            after = self.c.wait_converged(timeout=60)
            # HRW: every node gets exactly its own shards back.
            self.assertEqual(shards_of(after), shards_of(before))
            self.assertEqual(shards_of(after)["node2"], mine)
            time.sleep(1)
        finally:
            load.stop()
        # At most: node2 -> node3 -> node1 (node3 drained) -> node2.
        epochs1 = shard_epochs(self.c.name)
        self.assertLessEqual(max(epochs1[s] - epochs0[s] for s in epochs0), 3)
        print(f"\ndrain of {mine} shards: {took:.1f} s; {len(load.samples)} operations, {load.retries} retries, "
              f"{len(load.acked)} acknowledged writes", flush=True)
        self.assertEqual(load.failures[:5], [])
        self.assertGreater(load.check_in_postgres(), 20)


class RollingRestart(OperationsCase):
    def test_a_rolling_restart_under_load_fails_no_request_and_loses_no_write(self):
        tenants = self.tenants()
        load = Load(self.c, tenants).start()
        try:
            time.sleep(8)
            steady_until = time.time()
            drains, moves = [], []
            for k in (1, 2, 3):
                epochs0 = shard_epochs(self.c.name)
                t0 = time.time()
                self.c.signal(k, signal.SIGTERM)
                self.wait(f"node{k} exits", lambda: not self.c.alive(k), DRAIN_TARGET_S + 5)
                drains.append(time.time() - t0)
                self.assertIn("left the cluster", self.c.log(k))
                self.c.restart(k)
                self.c.wait_converged(timeout=60)
                epochs1 = shard_epochs(self.c.name)
                moves.append(max(epochs1[s] - epochs0[s] for s in epochs0))
            time.sleep(2)
            done_at = time.time()
        finally:
            load.stop()
        steady = load.latencies(until=steady_until)
        during = load.latencies(since=steady_until, until=done_at)
        print(f"\nrolling restart: drains {[round(d, 1) for d in drains]} s, most moves of a shard per restart "
              f"{moves}; {len(load.samples)} operations, {load.retries} retries, {len(load.failures)} failed, "
              f"{len(load.acked)} acknowledged writes; p99 {Load.p99(steady) * 1000:.0f} ms before, "
              f"{Load.p99(during) * 1000:.0f} ms during", flush=True)
        self.assertEqual(load.failures[:5], [])
        self.assertTrue(all(d <= DRAIN_TARGET_S for d in drains), drains)
        self.assertTrue(all(m <= 2 for m in moves), moves)
        self.assertGreater(len(during), 100)
        self.assertGreater(load.check_in_postgres(), 50)
        for k in (1, 2, 3):  # each node is a new incarnation, serving its own shards again
            self.assertEqual(len([m for m in self.c.view(k)["members"] if m["status"] == "active"]), 3)


class ScaleOut(OperationsCase):
    def test_a_fourth_node_under_load_takes_exactly_its_share_in_bounded_rounds(self):
        tenants = self.tenants()
        owners0, epochs0 = shard_owners(self.c.name), shard_epochs(self.c.name)
        self.assertEqual(owners0, hrw_owners(["node1", "node2", "node3"]))
        load = Load(self.c, tenants).start()
        try:
            time.sleep(6)
            steady_until = t0 = time.time()
            self.c.n = 4  # the launcher starts node4 on the spare ports; the load sends to it once it answers
            self.c.restart(4)
            self.c.wait_converged(timeout=SCALE_OUT_TARGET_S)
            took = time.time() - t0
            time.sleep(2)
            done_at = time.time()
        finally:
            load.stop()
        owners1, epochs1 = shard_owners(self.c.name), shard_epochs(self.c.name)
        # Exactly the shards HRW gives the newcomer moved, to it, once each; no other shard moved.
        want = hrw_owners(["node1", "node2", "node3", "node4"])
        self.assertEqual(owners1, want)
        moved = sorted(s for s in owners0 if owners1[s] != owners0[s])
        self.assertEqual(moved, sorted(s for s in want if want[s] == "node4"))
        self.assertEqual({s: epochs1[s] - epochs0[s] for s in epochs0}, {s: int(s in moved) for s in epochs0})
        self.assertLessEqual(len(moved), 4096 / 4 * 1.05)
        self.assertGreaterEqual(len(moved), 4096 / 4 * 0.95)
        # No more than cluster.handoff-max shards per hand-off (each one transaction: one changed_at).
        rounds = psql("SELECT changed_at, count(*) FROM shard_owner WHERE cluster_id = "
                      f"'{self.c.name}' AND shard_id = ANY('{{{','.join(map(str, moved))}}}') GROUP BY changed_at")
        biggest = max(int(n) for _, n in rounds)
        steady = load.latencies(until=steady_until)
        during = load.latencies(since=steady_until, until=done_at)
        print(f"\nscale-out 3 -> 4: {len(moved)} shards in {len(rounds)} hand-offs of at most {biggest}, converged "
              f"in {took:.1f} s; {len(load.samples)} operations, {load.retries} retries, {len(load.failures)} failed; "
              f"p99 {Load.p99(steady) * 1000:.0f} ms before, {Load.p99(during) * 1000:.0f} ms while moving", flush=True)
        self.assertLessEqual(biggest, HANDOFF_MAX)
        self.assertEqual(load.failures[:5], [])
        self.assertGreater(len(during), 100)
        # The p99 target (under 3x steady while moving) is a speed figure: bench
        # figure 13 checks it on a Release build, as figure 11 does the rolling
        # restart's. Here it is reported only: on two cores shared with the
        # load and the sanitizers it measured 2.5-4x, noise around the target.
        self.assertGreater(load.check_in_postgres(), 20)
        for tid in tenants:  # every tenant answers through the newcomer
            status, hdrs, doc = self.c.request(4, "PATCH", f"/v1/tenants/{tid}", {"name": "scaled"})
            self.assertEqual(status, 200, doc)


if __name__ == "__main__":
    unittest.main()
