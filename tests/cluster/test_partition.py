"""Network faults in network namespaces (design/cluster.md, S5, S6, S7): run
as root under `unshare --net --mount` (CTest does), so the bridge, the
namespaces and the routes live and die with this process; the host's network
is never touched. Each test gets a fresh three-node cluster on the lab's
PostgreSQL (which listens on the bridge address, as does the test itself).

- S7, a link partition: node1|node2 cut by blackhole routes each way; node3
  and PostgreSQL reach both. Nobody is declared dead (one suspicion vote
  each, two needed), requests between the cut pair are answered (by retry)
  or 503, never lost, requests through node3 keep working, and after the
  heal node1 reaches node2's tenants again.
- S5, a node cut from its peers but not from PostgreSQL: the two others vote
  it dead, it exits at its next renewal, and no write is acknowledged twice
  for one version (one writer per epoch), through it or through the others.
- S6, a node cut from PostgreSQL only: it stops serving and exits within its
  lease, and its tenants answer from the others within 15 s.
- S12, a PostgreSQL restart: every node fences itself and exits, nothing is
  acknowledged while the database is down, and the nodes (restarted as a
  supervisor would) form the cluster again within 30 s of its return."""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster_kit  # noqa: E402
from cluster_kit import AUDIENCE, ISSUER, SECRET, psql  # noqa: E402

SECRETS_KEY = os.urandom(32).hex()  # one for the cluster: the hello refuses a peer with another

PG_FIXTURE = os.path.join(cluster_kit.ROOT_DIR, "tests", "support", "pg_fixture.sh")
BRIDGE = "10.77.0.254"


def sh(*args):
    subprocess.run(args, check=True)


def lab(n):
    sh("mount", "--make-rprivate", "/")
    sh("mount", "-t", "tmpfs", "tmpfs", "/run")  # ip netns keeps its files here: private to this lab
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "br0", "type", "bridge")
    sh("ip", "link", "set", "br0", "up")
    sh("ip", "addr", "add", BRIDGE + "/24", "dev", "br0")
    for i in range(1, n + 1):
        sh("ip", "netns", "add", f"n{i}")
        sh("ip", "link", "add", f"v{i}", "type", "veth", "peer", "name", f"e{i}")
        sh("ip", "link", "set", f"v{i}", "master", "br0")
        sh("ip", "link", "set", f"v{i}", "up")
        sh("ip", "link", "set", f"e{i}", "netns", f"n{i}")
        sh("ip", "netns", "exec", f"n{i}", "ip", "addr", "add", f"10.77.0.{i}/24", "dev", f"e{i}")
        sh("ip", "netns", "exec", f"n{i}", "ip", "link", "set", f"e{i}", "up")
        sh("ip", "netns", "exec", f"n{i}", "ip", "link", "set", "lo", "up")


class Node:
    def __init__(self, i, store, name, workdir):
        self.i = i
        self.addr = f"10.77.0.{i}"
        self.log_path = os.path.join(workdir, f"node{i}.log")
        self.log = open(self.log_path, "ab")
        os.makedirs(os.path.join(workdir, f"node{i}"), exist_ok=True)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", f"n{i}", os.environ["COLONYD"], "--listen", f"{self.addr}:8080",
             "--cluster-listen", f"{self.addr}:7100", "--cluster-name", name, "--node-name", f"node{i}",
             "--data-dir", os.path.join(workdir, f"node{i}"), "--store", store,
             "--auth-jwt-hs256-secret", SECRET, "--auth-issuer", ISSUER, "--auth-audience", AUDIENCE,
             "--secrets-key", SECRETS_KEY],
            stdout=self.log, stderr=subprocess.STDOUT)

    def request(self, method, path, body=None, timeout=20):
        import http.client
        import json
        conn = http.client.HTTPConnection(self.addr, 8080, timeout=timeout)
        headers = {"Authorization": "Bearer " + cluster_kit.ROOT}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            payload = r.read()
            return r.status, (json.loads(payload) if payload and payload[:1] in b"{[" else None)
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Lab(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise RuntimeError("the partition test needs root (network namespaces); CTest runs it under unshare")
        import tempfile
        cls.dir = tempfile.mkdtemp(prefix="colony-partition-")
        lab(3)
        cls.pg = os.path.join(cls.dir, "pg")
        subprocess.run([PG_FIXTURE, "start", cls.pg], check=True, env=dict(os.environ, PG_LISTEN=BRIDGE),
                       capture_output=True)
        os.environ["COLONY_TEST_PG_DSN_FILE"] = os.path.join(cls.pg, "dsn-cluster")
        with open(os.environ["COLONY_TEST_PG_DSN_FILE"]) as f:
            cls.store = f.read().strip()

    @classmethod
    def tearDownClass(cls):
        subprocess.run([PG_FIXTURE, "stop", cls.pg], capture_output=True)

    def setUp(self):
        self.name = "lab-" + uuid.uuid4().hex[:6]
        self.workdir = os.path.join(self.dir, self.name)
        os.makedirs(self.workdir)
        self.routes = []
        self.nodes = [Node(i, self.store, self.name, self.workdir) for i in (1, 2, 3)]
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if all(n.request("GET", "/readyz")[0] == 200 for n in self.nodes):
                    views = [n.request("GET", "/v1/cluster")[1] for n in self.nodes]
                    if all(sum(m["shards"] for m in v["members"] if m["status"] == "active") == 4096 and
                           sum(m["status"] == "active" for m in v["members"]) == 3 for v in views):
                        break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("the lab cluster did not form")
        time.sleep(3)  # hand-offs to the last joiner

    def tearDown(self):
        for ns, dest in self.routes:
            subprocess.run(["ip", "netns", "exec", ns, "ip", "route", "del", "blackhole", dest], capture_output=True)
        for n in self.nodes:
            n.stop()

    def cut(self, ns, dest):
        """Drops everything node `ns` sends to `dest` (so TCP to it stalls, as on a lost link)."""
        sh("ip", "netns", "exec", ns, "ip", "route", "add", "blackhole", dest)
        self.routes.append((ns, dest))

    def heal(self):
        for ns, dest in self.routes:
            sh("ip", "netns", "exec", ns, "ip", "route", "del", "blackhole", dest)
        self.routes = []

    def status_of(self, node_name):
        rows = psql(f"SELECT status FROM cluster_member WHERE cluster_id = '{self.name}' AND node_name = "
                    f"'{node_name}' ORDER BY incarnation")
        return [r[0] for r in rows]

    def owner_seen_by(self, via, tid):
        try:
            status, place = self.nodes[via].request("GET", "/v1/cluster/placement/" + tid, timeout=2)
        except OSError:
            return None
        return place["owner"] if status == 200 else None

    def write(self, via, tid, acked, timeout=15):
        """One PATCH of `tid`'s name through node `via`: the status (0: no answer)."""
        name = "n-" + uuid.uuid4().hex[:8]
        try:
            status, doc = self.nodes[via].request("PATCH", f"/v1/tenants/{tid}", {"name": name}, timeout=timeout)
        except OSError:
            return 0
        if status == 200:
            acked.append((tid, name, doc["version"]))
        elif status != 503:
            self.fail(f"unexpected {status}: {doc}")
        return status

    def assert_one_writer(self, acked, tenants):
        """No version acknowledged twice, and each row holds its last acknowledged write."""
        for tid in tenants:
            versions = [a[2] for a in acked if a[0] == tid]
            self.assertEqual(len(versions), len(set(versions)), f"a version of {tid} was acknowledged twice")
            if versions:
                last = max((a for a in acked if a[0] == tid), key=lambda a: a[2])
                self.assertEqual(psql(f"SELECT name, version FROM tenants WHERE id = '{tid}'"),
                                 [[last[1], str(last[2])]])

    def tenant_on(self, owner):
        for _ in range(300):
            status, t = self.nodes[2].request("POST", "/v1/tenants", {"name": "P", "slug": "p-" + uuid.uuid4().hex[:10]})
            if status != 201:
                continue
            status, place = self.nodes[2].request("GET", "/v1/cluster/placement/" + t["id"])
            if place["owner"] == f"node{owner}":
                return t["id"]
        raise AssertionError(f"no tenant on node{owner}")

    def test_a_link_partition_declares_nobody_dead_and_loses_nothing(self):
        t2 = self.tenant_on(2)
        t1 = self.tenant_on(1)
        self.assertEqual(self.nodes[0].request("GET", f"/v1/tenants/{t2}")[0], 200)  # node1 -> node2 works
        self.cut("n1", "10.77.0.2/32")
        self.cut("n2", "10.77.0.1/32")
        acked, refused = [], 0
        t0 = time.time()
        while time.time() - t0 < 20:  # well past missed probes + votes + the lease
            for via, tid in ((0, t2), (1, t1), (2, t1), (2, t2)):
                if self.write(via, tid, acked) != 200:
                    refused += 1
            time.sleep(0.2)
        rows = psql(f"SELECT node_name, status FROM cluster_member WHERE cluster_id = '{self.name}' ORDER BY node_name")
        self.assertEqual(rows, [["node1", "2"], ["node2", "2"], ["node3", "2"]], "a node was declared dead")
        for n in self.nodes:
            self.assertIsNone(n.proc.poll(), f"node{n.i} exited")
        self.assertTrue(any(a[0] == t2 for a in acked) and any(a[0] == t1 for a in acked), acked)
        self.assertGreater(refused, 0, "no request crossed the cut")  # node1 -> node2 or node2 -> node1
        self.assert_one_writer(acked, (t1, t2))
        self.heal()
        deadline = time.time() + 20
        status = 0
        while time.time() < deadline:
            status, _ = self.nodes[0].request("PATCH", f"/v1/tenants/{t2}", {"name": "healed"})
            if status == 200:
                break
            time.sleep(0.3)
        self.assertEqual(status, 200, "node1 does not reach node2's tenant after the heal")
        print(f"\npartition: {len(acked)} writes acknowledged, {refused} answered 503 across the cut", flush=True)

    def test_a_node_cut_from_its_peers_is_voted_dead_and_exits(self):
        t2 = self.tenant_on(2)
        t1 = self.tenant_on(1)
        for peer in ("10.77.0.1/32", "10.77.0.3/32"):
            self.cut("n2", peer)
        self.cut("n1", "10.77.0.2/32")
        self.cut("n3", "10.77.0.2/32")
        t0 = time.time()
        acked, dead_at, back_at = [], None, None
        stop = threading.Event()

        def writer(via, tid):  # each path keeps writing, whatever the others wait for
            while not stop.is_set():
                self.write(via, tid, acked, timeout=5)
                time.sleep(0.05)
        # Writes to node2's tenant through node2 itself (still reachable from
        # here, and still reaching PostgreSQL) and through node1 and node3,
        # while the others vote node2 out and claim its shards.
        threads = [threading.Thread(target=writer, args=p) for p in ((1, t2), (0, t2), (2, t2), (0, t1))]
        for th in threads:
            th.start()
        try:
            while time.time() - t0 < 30 and (back_at is None or node2_alive(self)):
                if dead_at is None and "4" in self.status_of("node2"):
                    dead_at = time.time() - t0
                if back_at is None and dead_at is not None and answers(self.nodes[0], f"/v1/tenants/{t2}"):
                    back_at = time.time() - t0
                time.sleep(0.1)
        finally:
            stop.set()
            for th in threads:
                th.join()
        self.assertIsNotNone(dead_at, "node2 was not declared dead")
        self.assertLessEqual(dead_at, 15)
        self.assertIsNotNone(back_at, "node2's tenant did not answer through node1")
        self.assertLessEqual(back_at, 15)
        try:
            self.nodes[1].proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("node2 did not exit after it was declared dead")
        self.assertEqual((self.status_of("node1"), self.status_of("node3")), (["2"], ["2"]))
        self.assert_one_writer(acked, (t1, t2))
        self.assertTrue(any(a[0] == t2 for a in acked), acked)
        print(f"\ncut from peers: declared dead after {dead_at:.1f} s, its tenant back through node1 after "
              f"{back_at:.1f} s, {len(acked)} writes acknowledged", flush=True)

    def test_a_node_cut_from_postgresql_stops_and_its_tenants_move(self):
        t2 = self.tenant_on(2)
        acked = []
        self.assertEqual(self.write(0, t2, acked), 200)
        self.cut("n2", BRIDGE + "/32")  # PostgreSQL (and this test's own connections to node2)
        t0 = time.time()
        back_at = exited_at = None
        while time.time() - t0 < 30 and (back_at is None or exited_at is None):
            if exited_at is None and self.nodes[1].proc.poll() is not None:
                exited_at = time.time() - t0
            # node2 answers reads from memory until it stops serving: the
            # tenant is back when node1 sees another owner and a write commits.
            if back_at is None and self.owner_seen_by(0, t2) not in (None, "node2") and \
                    self.write(0, t2, acked, timeout=2) == 200:
                back_at = time.time() - t0
            time.sleep(0.1)
        self.assertIsNotNone(back_at, "node2's tenant did not answer through node1")
        self.assertLessEqual(back_at, 15)
        self.assertIsNotNone(exited_at, "node2 still runs 30 s after it lost PostgreSQL")
        self.assertLessEqual(exited_at, 12)  # the lease (10 s), then the exit
        self.assertNotIn("2", self.status_of("node2"))
        self.assert_one_writer(acked, (t2,))
        print(f"\ncut from PostgreSQL: node2 exited (code {self.nodes[1].proc.returncode}) after {exited_at:.1f} s, "
              f"its tenant answered through node1 after {back_at:.1f} s", flush=True)


    def test_a_postgresql_restart_fences_every_node_and_the_cluster_recovers(self):
        """S12: PostgreSQL stopped for 20 s. Every node stops serving and exits
        within its lease; no write is acknowledged while the database is down;
        restarted as a supervisor (systemd's Restart=, a StatefulSet) would,
        about 0.5 s after each exit, during the outage too, the nodes form
        the cluster again, as new incarnations, within 30 s of the
        database's return."""
        t1, t2 = self.tenant_on(1), self.tenant_on(2)
        acked = []
        for tid in (t1, t2):
            self.assertEqual(self.write(2, tid, acked), 200)
        pg_ctl(self.pg, "stop")
        down_at = time.time()
        during = []
        exited = {}
        restarts = 0
        while time.time() - down_at < 20:
            for via, tid in ((0, t1), (1, t2), (2, t1)):
                if self.nodes[via].proc.poll() is None:
                    started = time.time()
                    if self.write(via, tid, during, timeout=3) == 200 and started > down_at:
                        self.fail(f"a write was acknowledged through node{via + 1} with the database down")
            for k, n in enumerate(self.nodes):
                if n.proc.poll() is not None:
                    if n.i not in exited:
                        exited[n.i] = (time.time() - down_at, n.proc.returncode)
                    # The supervisor restarts it; with the database down it
                    # must fail its start-up (or wait), never serve.
                    self.nodes[k] = Node(n.i, self.store, self.name, self.workdir)
                    restarts += 1
            time.sleep(0.5)
        self.assertEqual(sorted(exited), [1, 2, 3], f"nodes still running with the database down: {exited}")
        self.assertTrue(all(at <= 12 for at, _ in exited.values()), exited)
        pg_ctl(self.pg, "start")
        up_at = time.time()
        formed_at = None
        while time.time() - up_at < 60:
            for k, n in enumerate(self.nodes):
                if n.proc.poll() is not None:  # the supervisor's part
                    self.nodes[k] = Node(n.i, self.store, self.name, self.workdir)
                    restarts += 1
            try:
                views = [n.request("GET", "/v1/cluster", timeout=2)[1] for n in self.nodes]
                if all(v and sum(m["shards"] for m in v["members"] if m["status"] == "active") == 4096 and
                       sum(m["status"] == "active" for m in v["members"]) == 3 for v in views):
                    formed_at = time.time() - up_at
                    break
            except OSError:
                pass
            time.sleep(0.5)
        self.assertIsNotNone(formed_at, "the cluster did not form again after the database came back")
        self.assertLessEqual(formed_at, 30)
        # Shards still move to the nodes that joined last (503 "moving" meanwhile).
        for tid, via in ((t1, 0), (t2, 0), (t1, 1)):
            deadline = time.time() + 15
            while self.write(via, tid, acked) != 200:
                self.assertLess(time.time(), deadline, f"no write to {tid} through node{via + 1} after the recovery")
                time.sleep(0.3)
        served_at = time.time() - up_at
        self.assert_one_writer(acked, (t1, t2))
        for name in ("node1", "node2", "node3"):
            statuses = self.status_of(name)
            self.assertEqual(statuses.count("2"), 1, (name, statuses))  # one live incarnation per name
            self.assertGreater(len(statuses), 1, (name, statuses))  # a new one
        print(f"\nPostgreSQL restart: nodes exited after {sorted(round(a, 1) for a, _ in exited.values())} s "
              f"(codes {sorted({c for _, c in exited.values()})}); {restarts} restarts; the cluster formed "
              f"{formed_at:.1f} s after the database was back, and served writes after {served_at:.1f} s", flush=True)


def pg_ctl(state, action):
    """Stops or starts the lab's PostgreSQL in place (same data, same port), as its owner."""
    with open(os.path.join(state, "datadir")) as f:
        data = f.read().strip()
    with open(os.path.join(state, "port")) as f:
        port = f.read().strip()
    args = ["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", f"{data}/db", "-w",
            "-t", "60"]
    if action == "stop":
        args += ["-m", "fast", "stop"]
    else:
        args += ["-l", f"{data}/server.log", "-o",
                 f"-c listen_addresses={BRIDGE} -c port={port} -c unix_socket_directories={data} -c fsync=on "
                 "-c max_connections=200", "start"]
    subprocess.run(args, check=True, capture_output=True)


def answers(node, path, timeout=5):
    try:
        return node.request("GET", path, timeout=timeout)[0] == 200
    except OSError:
        return False


def node2_alive(case):
    return case.nodes[1].proc.poll() is None


if __name__ == "__main__":
    unittest.main()
