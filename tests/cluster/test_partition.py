"""A link partition between two of three nodes while all still reach
PostgreSQL (design/cluster.md, S7), in network namespaces: run as root under
`unshare --net --mount` (CTest does), so the bridge, the namespaces and the
routes live and die with this process; the host's network is never touched.

node1|node2 are cut by blackhole routes each way; node3 and PostgreSQL reach
both. Expected: nobody is declared dead (one suspicion vote each, two
needed), requests between the cut pair are answered (by retry) or 503, never
lost, requests through node3 keep working, and after the heal node1 reaches
node2's tenants again."""
import os
import signal
import subprocess
import sys
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster_kit  # noqa: E402
from cluster_kit import AUDIENCE, ISSUER, SECRET, psql  # noqa: E402

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
             "--auth-jwt-hs256-secret", SECRET, "--auth-issuer", ISSUER, "--auth-audience", AUDIENCE],
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


class Partition(unittest.TestCase):
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
        cls.name = "lab-" + uuid.uuid4().hex[:6]
        store = open(os.environ["COLONY_TEST_PG_DSN_FILE"]).read().strip()
        cls.nodes = [Node(i, store, cls.name, cls.dir) for i in (1, 2, 3)]
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if all(n.request("GET", "/readyz")[0] == 200 for n in cls.nodes):
                    views = [n.request("GET", "/v1/cluster")[1] for n in cls.nodes]
                    if all(sum(m["shards"] for m in v["members"] if m["status"] == "active") == 4096 and
                           sum(m["status"] == "active" for m in v["members"]) == 3 for v in views):
                        break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("the lab cluster did not form")
        time.sleep(3)  # hand-offs to the last joiner

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.stop()
        subprocess.run([PG_FIXTURE, "stop", cls.pg], capture_output=True)

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
        sh("ip", "netns", "exec", "n1", "ip", "route", "add", "blackhole", "10.77.0.2/32")
        sh("ip", "netns", "exec", "n2", "ip", "route", "add", "blackhole", "10.77.0.1/32")
        acked, refused = [], 0
        t0 = time.time()
        while time.time() - t0 < 20:  # well past missed probes + votes + the lease
            for via, tid in ((0, t2), (1, t1), (2, t1), (2, t2)):
                name = "n-" + uuid.uuid4().hex[:8]
                try:
                    status, doc = self.nodes[via].request("PATCH", f"/v1/tenants/{tid}", {"name": name}, timeout=15)
                except OSError:
                    status = 0
                if status == 200:
                    acked.append((tid, name, doc["version"]))
                elif status == 503 or status == 0:
                    refused += 1
                else:
                    self.fail(f"unexpected {status}: {doc}")
            time.sleep(0.2)
        rows = psql(f"SELECT node_name, status FROM cluster_member WHERE cluster_id = '{self.name}' ORDER BY node_name")
        self.assertEqual(rows, [["node1", "2"], ["node2", "2"], ["node3", "2"]], "a node was declared dead")
        for n in self.nodes:
            self.assertIsNone(n.proc.poll(), f"node{n.i} exited")
        through3 = [a for a in acked if a[0] in (t1, t2)]
        self.assertTrue(any(a[0] == t2 for a in through3) and any(a[0] == t1 for a in through3), acked)
        self.assertGreater(refused, 0, "no request crossed the cut")  # node1 -> node2 or node2 -> node1
        # Nothing acknowledged was lost: each tenant's row holds its last acknowledged write.
        for tid in (t1, t2):
            last = max((a for a in acked if a[0] == tid), key=lambda a: a[2])
            self.assertEqual(psql(f"SELECT name, version FROM tenants WHERE id = '{tid}'"), [[last[1], str(last[2])]])
        sh("ip", "netns", "exec", "n1", "ip", "route", "del", "blackhole", "10.77.0.2/32")
        sh("ip", "netns", "exec", "n2", "ip", "route", "del", "blackhole", "10.77.0.1/32")
        deadline = time.time() + 20
        status = 0
        while time.time() < deadline:
            status, _ = self.nodes[0].request("PATCH", f"/v1/tenants/{t2}", {"name": "healed"})
            if status == 200:
                break
            time.sleep(0.3)
        self.assertEqual(status, 200, "node1 does not reach node2's tenant after the heal")
        print(f"\npartition: {len(acked)} writes acknowledged, {refused} answered 503 across the cut", flush=True)


if __name__ == "__main__":
    unittest.main()
