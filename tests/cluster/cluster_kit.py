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
import socket
import subprocess
import tempfile
import time
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

    def request(self, k, method, path, body=None, headers=None, timeout=20):
        conn = http.client.HTTPConnection("127.0.0.1", self.port(k), timeout=timeout)
        h = {"Authorization": "Bearer " + ROOT}
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
                    # balanced: hand-offs to a newcomer are done
                    if any(abs(m["shards"] - 4096 / len(live)) > 4096 / len(live) / 4 for m in live):
                        ok = False
                counts = sorted((m["nodeName"], m["incarnation"], m["shards"]) for v in views for m in v["members"])
                stable = stable + 1 if ok and counts == last else 0
                last = counts
                if stable >= 3:  # unchanged for ~1 s: no hand-off round left
                    return views[0]
            time.sleep(0.3)
        raise AssertionError("the cluster did not converge: " + json.dumps(views)[:2000])

    def owner(self, tenant_id, k=1):
        status, _, doc = self.request(k, "GET", "/v1/cluster/placement/" + tenant_id)
        assert status == 200, (status, doc)
        return doc

    def new_tenant(self, k=1, owner=None, attempts=200):
        """A tenant created through node k; with `owner`, one whose shard node `owner` owns."""
        for _ in range(attempts):
            status, _, t = self.request(k, "POST", "/v1/tenants",
                                        {"name": "T", "slug": "c-" + uuid.uuid4().hex[:12]})
            assert status == 201, (status, t)
            if owner is None or self.owner(t["id"], k)["owner"] == f"node{owner}":
                return t
        raise AssertionError(f"no tenant landed on node{owner}")
