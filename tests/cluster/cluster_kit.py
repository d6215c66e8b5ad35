"""A Colony cluster for the tests: N colonyd nodes on loopback sharing one
PostgreSQL database, started and stopped with deploy/local/cluster.sh (the
launcher the README uses), faults by pid (kill -9, SIGSTOP/SIGCONT)."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import signal
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

ROOT_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAUNCHER = os.path.join(ROOT_DIR, "deploy", "local", "cluster.sh")
SECRET = "cluster-test-hs256-" + uuid.uuid4().hex
ISSUER = "https://idp.example/cluster"
AUDIENCE = "colony-api"


def dsn():
    with open(os.environ["COLONY_TEST_PG_DSN_FILE"]) as f:
        return f.read().strip()


def psql(sql):
    out = subprocess.run(["psql", dsn(), "-Atc", sql], check=True, capture_output=True, text=True)
    return [line.split("|") for line in out.stdout.splitlines() if line]


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(roles=("platform_admin",)):
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "root", "iat": now, "exp": now + 3600,
                            "roles": list(roles)}).encode())
    sig = hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(sig)}"


ROOT = token()


def _free_base(count):
    """A base port b with b+1..b+count free for HTTP and b+1000+1..+count for the cluster ports."""
    for _ in range(200):
        base = random.randrange(20000, 50000, 10)
        ok = True
        for p in [base + i for i in range(1, count + 1)] + [base + 1000 + i for i in range(1, count + 1)]:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free ports")


def request_at(port, key, method, path, body=None, headers=None, timeout=20):
    """One HTTP exchange with a node on loopback as `key`: (status, headers, JSON body or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Authorization": "Bearer " + key}
    h.update(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        doc = json.loads(payload) if payload and resp.getheader("Content-Type", "").endswith("json") else None
        return resp.status, dict(resp.getheaders()), doc
    finally:
        conn.close()


class Cluster:
    def __init__(self, n=3, extra=()):
        self.n = n
        self.dir = tempfile.mkdtemp(prefix="colony-cluster-")
        self.base = _free_base(n + 1)  # a spare slot for a node added later
        self.name = "test-" + uuid.uuid4().hex[:8]
        self.env = dict(os.environ)
        self.env.update({
            "COLONYD": os.environ["COLONYD"],
            "COLONY_STORE": dsn(),
            "HTTP_BASE": str(self.base),
            "CLUSTER_BASE": str(self.base + 1000),
            "CLUSTER_NAME": self.name,
            "COLONYD_ARGS": " ".join(["--auth-jwt-hs256-secret", SECRET, "--auth-issuer", ISSUER,
                                      "--auth-audience", AUDIENCE, "--debug.fault-injection", "true", *extra]),
        })
        self._run("start", str(n), self.dir)

    def _run(self, *args):
        subprocess.run([LAUNCHER, *args], env=self.env, check=True, timeout=120)

    def port(self, k):
        return self.base + k

    def pid(self, k):
        with open(os.path.join(self.dir, f"node{k}.pid")) as f:
            return int(f.read())

    def alive(self, k):
        try:
            os.kill(self.pid(k), 0)
        except ProcessLookupError:
            return False
        # a zombie child of the launcher's shell is gone for our purposes
        try:
            with open(f"/proc/{self.pid(k)}/stat") as f:
                return f.read().split()[2] != "Z"
        except FileNotFoundError:
            return False

    def log(self, k):
        with open(os.path.join(self.dir, f"node{k}.log"), errors="replace") as f:
            return f.read()

    def signal(self, k, sig):
        os.kill(self.pid(k), sig)

    def restart(self, k):
        self._run("node", str(k), self.dir)

    def stop(self):
        for k in range(1, self.n + 1):  # a frozen node cannot stop: let it run first
            try:
                self.signal(k, signal.SIGCONT)
            except (ProcessLookupError, FileNotFoundError):
                pass
        self._run("stop", self.dir)
        # The nodes' data and logs go with them (COLONY_KEEP_TEST_DIRS=1 keeps them to look at).
        if not os.environ.get("COLONY_KEEP_TEST_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, k, method, path, body=None, headers=None, timeout=20):
        return request_at(self.port(k), ROOT, method, path, body, headers, timeout)

    def view(self, k):
        status, _, doc = self.request(k, "GET", "/v1/cluster")
        assert status == 200, (status, doc)
        return doc

    def wait_converged(self, timeout=30):
        """Until every node sees every live member active, all shards owned by live members."""
        deadline = time.time() + timeout
        last, stable = None, 0
        while time.time() < deadline:
            views = []
            for k in range(1, self.n + 1):
                if not self.alive(k):
                    continue
                try:
                    views.append(self.view(k))
                except (OSError, AssertionError):
                    views.append(None)
            if all(v is not None for v in views) and views:
                ok = True
                for v in views:
                    live = [m for m in v["members"] if m["status"] != "dead"]
                    if len(live) != len(views) or any(m["status"] != "active" for m in live):
                        ok = False
                    if sum(m["shards"] for m in live) != 4096:
                        ok = False
                    # balanced: every member owns what the placement rule gives it
                    if v["shardsMoving"] != 0 or any(m["shards"] != m["targetShards"] for m in live):
                        ok = False
                counts = sorted((m["nodeName"], m["incarnation"], m["shards"]) for v in views for m in v["members"])
                stable = stable + 1 if ok and counts == last else 0
                last = counts
                if stable >= 2:  # and every node's view agrees twice in a row
                    return views[0]
            time.sleep(0.3)
        raise AssertionError("the cluster did not converge: " + json.dumps(views)[:2000])

    def owner(self, tenant_id, k=1):
        status, _, doc = self.request(k, "GET", "/v1/cluster/placement/" + tenant_id)
        assert status == 200, (status, doc)
        return doc

    def new_tenant(self, k=1, owner=None, attempts=200, plan=None):
        """A tenant created through node k; with `owner`, one whose shard node `owner` owns."""
        for _ in range(attempts):
            body = {"name": "T", "slug": "c-" + uuid.uuid4().hex[:12]}
            if plan:
                body["plan"] = plan
            status, _, t = self.request(k, "POST", "/v1/tenants", body)
            assert status == 201, (status, t)
            if owner is None or self.owner(t["id"], k)["owner"] == f"node{owner}":
                return t
        raise AssertionError(f"no tenant landed on node{owner}")


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


class Load:
    """Steady reads and writes through every node, as clients behind a load
    balancer: each operation goes to the next node in turn; a refused
    connection moves it to another node, a 503 (or an unknown outcome) is
    retried after Retry-After with the same Idempotency-Key, for up to
    `patience` seconds. Writes create users (one key and one e-mail each);
    reads get a tenant. Records every operation's latency (retries included)
    and outcome."""

    def __init__(self, cluster, tenants, threads=6, patience=30, pause=0.02):
        import threading
        self.c, self.tenants, self.patience, self.pause = cluster, list(tenants), patience, pause
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.samples = []  # (start time, seconds, kind)
        self.failures = []  # (kind, status, body)
        self.acked = []  # (tenant id, user id, email, key)
        self.retries = 0
        self.threads = [threading.Thread(target=self._run_thread, args=(i,), daemon=True) for i in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join()

    def _attempt(self, k, method, path, body, headers):
        try:
            return self.c.request(k, method, path, body, headers, timeout=10)
        except OSError as e:
            return 0, {}, str(e)

    def _op(self, i, n, k):
        tid = self.tenants[(i * 7919 + n) % len(self.tenants)]
        write = n % 2 == 0
        key, email = str(uuid.uuid4()), f"u{i}-{n}-{uuid.uuid4().hex[:6]}@example.com"
        t0 = time.time()
        deadline = t0 + self.patience
        nodes = list(range(1, self.c.n + 1))
        while True:
            if write:
                status, hdrs, doc = self._attempt(k, "POST", f"/v1/tenants/{tid}/users",
                                                  {"email": email, "name": "load"}, {"Idempotency-Key": key})
                done = status == 201
            else:
                status, hdrs, doc = self._attempt(k, "GET", f"/v1/tenants/{tid}", None, None)
                done = status == 200
            if done:
                with self.lock:
                    self.samples.append((t0, time.time() - t0, "write" if write else "read"))
                    if write:
                        self.acked.append((tid, doc["id"], email, key))
                return
            in_use = status == 409 and "idempotency-key-in-use" in str(doc)
            if status not in (0, 503) and not in_use or time.time() > deadline:
                with self.lock:
                    self.failures.append(("write" if write else "read", status, str(doc)[:300]))
                return
            with self.lock:
                self.retries += 1
            if status == 0:  # the node is down: the balancer sends the retry elsewhere
                k = nodes[(nodes.index(k) + 1) % len(nodes)]
                time.sleep(0.05)
            else:
                try:
                    time.sleep(min(float(hdrs.get("Retry-After", "0.2")), 1.0))
                except ValueError:
                    time.sleep(0.2)

    def _run_thread(self, i):
        n = 0
        while not self.stop_flag.is_set():
            self._op(i, n, 1 + (i + n) % self.c.n)
            n += 1
            time.sleep(self.pause)

    def latencies(self, since=0.0, until=float("inf")):
        with self.lock:
            return sorted(s for t, s, _ in self.samples if since <= t < until)

    @staticmethod
    def p99(xs):
        return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else float("nan")

    def check_in_postgres(self):
        """Every acknowledged creation is in PostgreSQL once, under its tenant
        and e-mail; no key created two users; the outbox holds the design's
        invariants (check_outbox). Returns the number checked."""
        with self.lock:
            acked = list(self.acked)
        if not acked:
            return 0
        emails = ",".join(f"'{e}'" for _, _, e, _ in acked)
        rows = psql(f"SELECT tenant_id, id, email_lc FROM users WHERE email_lc IN ({emails})")
        assert sorted(rows) == sorted([t, u, e] for t, u, e, _ in acked), "acknowledged users missing or duplicated"
        assert check_outbox(self.tenants) >= len(acked)
        return len(acked)


def shard_epochs(cluster_name):
    return {int(s): int(e) for s, e in psql(f"SELECT shard_id, epoch FROM shard_owner WHERE cluster_id = '{cluster_name}'")}


_M64 = (1 << 64) - 1


def _mix(z):
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _hash64(text):
    h = 0xCBF29CE484222325
    for c in text.encode():
        h = ((h ^ c) * 0x100000001B3) & _M64
    return _mix(h)


def hrw_owners(names):
    """The placement rule written again from docs/clustering.md (rendezvous
    hashing over the node names): shard -> the name that wins it."""
    keys = {n: _hash64(n) for n in names}
    return {s: max(names, key=lambda n: _mix(keys[n] ^ ((s * 0x9E3779B97F4A7C15) & _M64))) for s in range(4096)}


def shard_of(tenant_id):
    return _hash64(tenant_id) % 4096


def check_outbox(tenants):
    """The invariants of design/cluster.md over the events the tenants'
    commits left in the outbox, in commit order (seq): per aggregate, its
    versions start at 1 and go up by one (several events of one change share
    its version); per shard, the ownership epochs the fence wrote never go
    back, so no node committed under an ownership after a newer one began
    (a zombie, or an owner after a hand-off). Returns the events checked."""
    ids = ",".join(f"'{t}'" for t in tenants)
    rows = psql("SELECT tenant_id, aggregate_kind, aggregate_id, aggregate_version, coalesce(shard_epoch, -1), seq "
                f"FROM outbox WHERE tenant_id IN ({ids}) AND aggregate_version > 0 ORDER BY seq")
    versions, epochs = {}, {}
    for tid, kind, agg, version, epoch, seq in rows:
        version, epoch = int(version), int(epoch)
        assert epoch > 0, f"event {seq} committed on a cluster without an epoch"
        last = versions.get((kind, agg), 0)
        assert version in (last, last + 1), f"{kind} {agg}: version {version} after {last} (event {seq})"
        versions[(kind, agg)] = version
        shard = shard_of(tid)
        assert epoch >= epochs.get(shard, 0), f"shard {shard}: epoch {epoch} after {epochs[shard]} (event {seq})"
        epochs[shard] = epoch
    return len(rows)


def shard_owners(cluster_name):
    """shard -> the node name the shard table names as its owner."""
    return {int(s): n for s, n in psql(
        "SELECT o.shard_id, m.node_name FROM shard_owner o JOIN cluster_member m "
        f"ON m.cluster_id = o.cluster_id AND m.incarnation = o.owner WHERE o.cluster_id = '{cluster_name}'")}


def metric(cluster, k, family, labels=""):
    """The sum of node k's samples of `family` whose labels contain `labels`."""
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port(k), timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + ROOT})
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200, resp.status
    finally:
        conn.close()
    total = 0.0
    for line in body.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name == family and labels in line:
            total += float(line.split()[-1])
    return total


def wait_for(what, pred, timeout, interval=0.2):
    """pred()'s first truthy value within `timeout` s; AssertionError naming `what` otherwise."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}")
