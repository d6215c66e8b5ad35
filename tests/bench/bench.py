#!/usr/bin/env python3
"""Colony's benchmark harness (issues #5 and #15): each figure is paired with a reference
measured in the same run on the same machine; the ratio is the result.

  bench.py [--smoke] [--seconds S] [--connections C] [--users N] [--out DIR]

Needs (Debian packages): wrk, nginx-light, postgresql-15 (pgbench), gnuplot-nox.
Binaries: COLONYD, COLONY_BENCH_ACTORS (environment) or build-release/bin/.
Prints a table, writes DIR/results.json and DIR/chart.png. --smoke runs every
pair for about a second with tiny sizes, to check that figures are produced.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

from console_cost import console_figure
from plugin_cost import plugin_events_figure, plugin_figure, plugin_noisy_figure
from report import report_of

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PG_FIXTURE = os.path.join(ROOT, "tests", "support", "pg_fixture.sh")
PGBIN = "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, key=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


class Colonyd:
    """One node; `extra` adds flags, `prefix` wraps the command (taskset), `key`
    is the platform key when another node of the same database made it."""

    def __init__(self, binary, workdir, store="sqlite:", extra=(), prefix=(), key=None):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="colony-bench-", dir=workdir)
        self.log = open(os.path.join(self.dir, "colonyd.log"), "wb")
        self.proc = subprocess.Popen([*prefix, binary, "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.dir,
                                      "--store", store, "--log-level", "warn", *extra],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if http("GET", self.base + "/readyz")[0] == 200:
                    path = os.path.join(self.dir, "admin.key")  # the bootstrap platform admin key
                    if key is None or os.path.exists(path):
                        with open(path) as f:
                            self.key = f.read().strip()
                    else:
                        self.key = key
                    return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("colonyd did not get ready")

    def tenant(self):
        slug = "bench-" + os.urandom(4).hex()
        _, body = http("POST", self.base + "/v1/tenants", {"slug": slug, "name": "Bench", "plan": "enterprise"},
                       self.key)
        return json.loads(body)["id"]

    def stop(self):
        started = time.time()
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=300)
        self.log.close()
        return time.time() - started  # reported: exit after a heavy run includes the store's final flush

    def owner(self, tenant_id):
        _, body = http("GET", f"{self.base}/v1/cluster/placement/{tenant_id}", key=self.key)
        return json.loads(body)["owner"]

    def converged(self, n, timeout=60):
        """Until this node sees n active members owning all shards, each where
        the placement rule puts it, unchanged for a second."""
        deadline, last, stable = time.time() + timeout, None, 0
        while time.time() < deadline:
            _, body = http("GET", f"{self.base}/v1/cluster", key=self.key)
            view = json.loads(body)
            live = [(m["nodeName"], m["shards"]) for m in view["members"] if m["status"] == "active"]
            ok = len(live) == n and sum(c for _, c in live) == 4096 and view["shardsMoving"] == 0
            stable = stable + 1 if ok and live == last else 0
            last = live
            if stable >= 3:
                return
            time.sleep(0.3)
        raise RuntimeError(f"the cluster did not converge: {last}")


def cluster_nodes(colonyd, work, dsn, key, n, name, prefixes=None):
    """n nodes of one cluster on `dsn`, whose platform key is `key`."""
    nodes = []
    for i in range(n):
        extra = ["--cluster-listen", f"127.0.0.1:{free_port()}", "--cluster-name", name, "--node-name", f"node{i + 1}", *CLUSTER_KEY]
        nodes.append(Colonyd(colonyd, work, dsn, extra, prefixes[i] if prefixes else (), key))
    nodes[0].converged(n)
    return nodes


# One secrets-key for every clustered node (the hello refuses a peer with another).
CLUSTER_KEY = ("--secrets-key", os.urandom(32).hex())

GET_MANY = """
local paths = {%s}
request = function()
  return wrk.format("GET", paths[math.random(#paths)], {["Authorization"] = "Bearer %s"})
end
"""


def cluster_figures(colonyd, work, dsn, key, a, add, started):
    # 8: GET of a user through a node that does not own its tenant (one forward
    # hop) against GET at the owner, alternating slices.
    nodes = cluster_nodes(colonyd, work, dsn, key, 2, "bench8-" + os.urandom(3).hex())
    started.extend(nodes)
    owner_of = {f"node{i + 1}": nd for i, nd in enumerate(nodes)}
    tid = nodes[0].tenant()
    owner = owner_of[nodes[0].owner(tid)]
    other = nodes[1] if owner is nodes[0] else nodes[0]
    _, ubody = http("POST", f"{owner.base}/v1/tenants/{tid}/users", {"email": "fwd@bench.example", "name": "F"}, owner.key)
    path = f"/v1/tenants/{tid}/users/{json.loads(ubody)['id']}"
    wrk(other.base + path, 1, a.connections, key=other.key)  # warm-up, both paths
    wrk(owner.base + path, 1, a.connections, key=owner.key)
    rounds = 4 if a.seconds >= 8 else 1
    f_runs, o_runs = [], []
    for _ in range(rounds):
        f_runs.append(wrk(other.base + path, a.seconds / rounds, a.connections, key=other.key))
        o_runs.append(wrk(owner.base + path, a.seconds / rounds, a.connections, key=owner.key))
    f, o = merge_runs(f_runs), merge_runs(o_runs)
    add(8, "GET one user through a non-owner node (1 hop)", f["rate"], o["rate"], "req/s", ">= 0.5x GET at the owner",
        f["rate"] >= 0.5 * o["rate"], {"forwarded": f, "owner": o})
    for nd in nodes:
        nd.stop()
        started.remove(nd)

    # 9: failover: kill -9 of an owner to the first 200 for each of its tenants through a survivor.
    nodes = cluster_nodes(colonyd, work, dsn, key, 3, "bench9-" + os.urandom(3).hex())
    started.extend(nodes)
    mine = []
    while len(mine) < (2 if a.smoke else 8):
        t = nodes[0].tenant()
        if nodes[0].owner(t) == "node3":
            mine.append(t)
    t0 = time.time()
    nodes[2].proc.kill()
    back = {}
    while len(back) < len(mine) and time.time() - t0 < 60:
        for t in mine:
            if t not in back:
                try:
                    status, _ = http("GET", f"{nodes[0].base}/v1/tenants/{t}", key=nodes[0].key)
                except Exception:
                    status = 0
                if status == 200:
                    back[t] = time.time() - t0
        time.sleep(0.05)
    times = sorted(back.values())
    worst = max(times) if len(times) == len(mine) else None
    add(9, "failover: kill -9 of an owner to its tenants' first 200", worst, None, "s (max)", "<= 15 s",
        worst is not None and worst <= 15,
        {"p50_s": times[len(times) // 2] if times else None, "max_s": worst, "tenants": len(mine),
         "answered": len(times), "all_s": times})
    for nd in nodes:
        nd.stop()
        started.remove(nd)

    # 10: two nodes each pinned to one core against one node pinned to one core. The load
    # generator is part of each side: wrk runs on the nodes' cores (the single node shares
    # core 0 with its wrk; each node of the pair shares its core with one wrk), so neither
    # side gets a core for free. The same connections in all, spread evenly over the nodes;
    # each request picks one of 64 tenants at random (so about half of them reach a node
    # that does not own the tenant and are forwarded). The detail also has the pair with
    # owner-aware clients (each wrk asks only for the tenants its node owns, as a client
    # that reads GET /v1/cluster/placement would), which shows what forwarding costs.
    def spread_load(targets, paths_of, cores):
        procs = []
        per = max(1, a.connections // len(targets))
        for i, nd in enumerate(targets):
            script = lua(work, f"many{i}.lua", GET_MANY % (", ".join(f'"{p}"' for p in paths_of(i)), nd.key))
            args = ["taskset", "-c", cores[i], "wrk", "-t1", f"-c{per}", f"-d{max(1, int(a.seconds / 2))}s",
                    "-s", script, nd.base + "/"]
            procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True))
        rate = 0.0
        for pr in procs:
            out = pr.communicate(timeout=a.seconds + 60)[0]
            if re.search(r"Non-2xx or 3xx responses:\s+[1-9]", out):
                raise RuntimeError("figure 10: non-2xx answers")
            rate += float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        return rate

    def seed(nd, count):
        paths, tenants = [], []
        for _ in range(count):
            t = nd.tenant()
            _, ub = http("POST", f"{nd.base}/v1/tenants/{t}/users", {"email": "m@bench.example", "name": "M"}, nd.key)
            paths.append(f"/v1/tenants/{t}/users/{json.loads(ub)['id']}")
            tenants.append(t)
        return paths, tenants

    single = cluster_nodes(colonyd, work, dsn, key, 1, "bench10a-" + os.urandom(3).hex(), [("taskset", "-c", "0")])
    started.extend(single)
    paths, _ = seed(single[0], 8 if a.smoke else 64)
    spread_load(single, lambda i: paths, ["0"])  # warm-up: activations
    one = [spread_load(single, lambda i: paths, ["0"]) for _ in range(2)]
    single[0].stop()
    started.remove(single[0])
    pair = cluster_nodes(colonyd, work, dsn, key, 2, "bench10b-" + os.urandom(3).hex(),
                         [("taskset", "-c", "0"), ("taskset", "-c", "1")])
    started.extend(pair)
    paths, tenants = seed(pair[0], 8 if a.smoke else 64)
    owned = [[p for p, t in zip(paths, tenants) if pair[0].owner(t) == f"node{i + 1}"] or paths[:1] for i in range(2)]
    spread_load(pair, lambda i: paths, ["0", "1"])  # warm-up
    two, aware = [], []
    for _ in range(2):  # alternating, as the other figures do
        two.append(spread_load(pair, lambda i: paths, ["0", "1"]))
        aware.append(spread_load(pair, lambda i: owned[i], ["0", "1"]))
    one_r, two_r, aware_r = sum(one) / len(one), sum(two) / len(two), sum(aware) / len(aware)
    add(10, "2 nodes on 1 core each vs 1 node on 1 core, GETs", two_r, one_r, "req/s", ">= 1.8x", two_r >= 1.8 * one_r,
        {"two_nodes": two, "one_node": one, "two_nodes_owner_aware": aware,
         "owner_aware_ratio": aware_r / one_r if one_r else None,
         "note": "wrk runs on the nodes' cores on both sides; half of the uniform requests are forwarded"})
    for nd in pair:
        nd.stop()
        started.remove(nd)


class BenchCluster:
    """Nodes of one cluster as tests/cluster's load generator sees them:
    request(k, ...) to node k (1-based) with the platform key."""

    def __init__(self, nodes, key):
        self.nodes, self.key = nodes, key

    @property
    def n(self):
        return len(self.nodes)

    def request(self, k, method, path, body=None, headers=None, timeout=20):
        from cluster_kit import request_at
        return request_at(self.nodes[k - 1].port, self.key, method, path, body, headers, timeout)


class OneNode:
    """One node as paced() sees a cluster: a new connection per request, as BenchCluster's."""

    def __init__(self, node):
        self.node, self.n = node, 1

    def request(self, k, method, path, body=None, headers=None, timeout=20):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()


def paced(cluster, path, key, rate, seconds, threads=4):
    """GETs of `path` at `rate` per second in all, spread over the nodes, with
    tenant credential `key`: (latencies of the 200s, other statuses by count)."""
    import threading
    lat, other, lock = [], {}, threading.Lock()
    t_end = time.time() + seconds

    def run(i):
        gap, nxt, n = threads / rate, time.time() + i * (1 / rate), 0
        while nxt < t_end:
            time.sleep(max(0.0, nxt - time.time()))
            t0 = time.time()
            try:
                status = cluster.request(1 + (i + n) % cluster.n, "GET", path, headers={"Authorization": "Bearer " + key},
                                         timeout=10)[0]
            except OSError:
                status = 0
            with lock:
                if status == 200:
                    lat.append(time.time() - t0)
                else:
                    other[status] = other.get(status, 0) + 1
            nxt += gap
            n += 1

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sorted(lat), other


def p99(xs):
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else None


def under_load(cluster, tenants, steady_s, change):
    """`change()` under tests/cluster's load generator (6 clients), after
    steady_s of steady load: (load, latencies before, during, its result)."""
    from cluster_kit import Load
    load = Load(cluster, tenants, threads=6).start()
    try:
        time.sleep(steady_s)
        before_end = time.time()
        out = change()
        time.sleep(1)
        during_end = time.time()
    finally:
        load.stop()
    return load, load.latencies(until=before_end), load.latencies(since=before_end, until=during_end), out


def operations_figures(colonyd, work, dsn, key, a, add, started):
    sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

    # 11: a rolling restart of three nodes under reads and writes through all of
    # them (clients retrying 503 with the same Idempotency-Key, moving to another
    # node when one refuses connections): failed requests, p99 during vs before.
    name = "bench11-" + os.urandom(3).hex()
    ports = [free_port() for _ in range(3)]

    def node(i):
        extra = ["--cluster-listen", f"127.0.0.1:{ports[i]}", "--cluster-name", name, "--node-name", f"node{i + 1}", *CLUSTER_KEY]
        return Colonyd(colonyd, work, dsn, extra, (), key)

    nodes = [node(i) for i in range(3)]
    started.extend(nodes)
    nodes[0].converged(3)
    bc = BenchCluster(nodes, key)
    tenants = [nodes[0].tenant() for _ in range(9)]
    steady_s = 2 if a.smoke else 10

    def restart_each():
        drains = []
        for i in range(3):
            old = nodes[i]
            drains.append(old.stop())
            started.remove(old)
            nodes[i] = node(i)
            started.append(nodes[i])
            nodes[(i + 1) % 3].converged(3)
        return drains

    load, before, during, drains = under_load(bc, tenants, steady_s, restart_each)
    fails = len(load.failures)
    add(11, "rolling restart of 3 nodes under load: failed requests", fails, None, "requests", "0 failed",
        fails == 0, {"operations": len(load.samples), "retries": load.retries, "failures": load.failures[:5],
                     "acknowledged_writes": len(load.acked), "p99_before_ms": (p99(before) or 0) * 1000,
                     "p99_during_ms": (p99(during) or 0) * 1000, "drain_and_exit_s": drains,
                     "p99_during_over_before": (p99(during) / p99(before)) if before and during else None})
    for nd in nodes:
        nd.stop()
        started.remove(nd)

    # 12: noisy neighbour: a victim tenant's p99 (paced GETs well under its
    # plan's rate) while another tenant floods the cluster at 10x its plan's
    # rate, against the victim alone; alternating.
    nodes = cluster_nodes(colonyd, work, dsn, key, 3, "bench12-" + os.urandom(3).hex())
    started.extend(nodes)
    bc = BenchCluster(nodes, key)

    def tenant_with_key(plan):
        slug = "nn-" + os.urandom(4).hex()
        _, body = http("POST", nodes[0].base + "/v1/tenants", {"slug": slug, "name": "N", "plan": plan}, key)
        tid = json.loads(body)["id"]
        _, body = http("POST", f"{nodes[0].base}/v1/tenants/{tid}/api-keys", {"roles": ["admin"]}, key)
        return tid, json.loads(body)["key"]

    victim, vkey = tenant_with_key("pro")  # 500/s
    flood, fkey = tenant_with_key("free")  # 20/s: flooded at 200/s
    seconds = 2 if a.smoke else max(5.0, a.seconds / 2)
    paced(bc, f"/v1/tenants/{victim}", vkey, 50, 1)  # warm-up
    alone, noisy, flood_stats = [], [], []
    import threading
    for _ in range(1 if a.smoke else 2):
        lat, other = paced(bc, f"/v1/tenants/{victim}", vkey, 50, seconds)
        alone.append((p99(lat), other))
        out = {}
        th = threading.Thread(target=lambda: out.update(r=paced(bc, f"/v1/tenants/{flood}", fkey, 200, seconds, 8)))
        th.start()
        lat, other = paced(bc, f"/v1/tenants/{victim}", vkey, 50, seconds)
        th.join()
        noisy.append((p99(lat), other))
        flood_stats.append({"ok": len(out["r"][0]), "other": out["r"][1]})
    with_flood = max(x[0] for x in noisy)
    without = max(x[0] for x in alone)
    add(12, "noisy neighbour: victim p99 with a tenant flooding at 10x", with_flood * 1000, without * 1000, "ms p99",
        "<= 1.5x the victim alone", with_flood <= 1.5 * without,
        {"victim_alone": alone, "victim_with_flood": noisy, "flood": flood_stats,
         "victim_rate": 50, "flood_rate": 200, "flood_plan_rate": 20})
    for nd in nodes:
        nd.stop()
        started.remove(nd)

    # 13: scale-out 3 -> 4 under the load of figure 11: p99 while the newcomer
    # takes its quarter of the shards against p99 before; converged within 60 s.
    name = "bench13-" + os.urandom(3).hex()
    nodes = cluster_nodes(colonyd, work, dsn, key, 3, name)
    started.extend(nodes)
    bc = BenchCluster(nodes, key)
    tenants = [nodes[0].tenant() for _ in range(9)]

    def add_fourth():
        t0 = time.time()
        extra = ["--cluster-listen", f"127.0.0.1:{free_port()}", "--cluster-name", name, "--node-name", "node4",
                 *CLUSTER_KEY]
        newcomer = Colonyd(colonyd, work, dsn, extra, (), key)
        started.append(newcomer)
        nodes.append(newcomer)  # the load sends to it from now on
        nodes[0].converged(4)
        return time.time() - t0

    load, before, during, converged_s = under_load(bc, tenants, steady_s, add_fourth)
    ratio = p99(during) / p99(before) if before and during else None
    add(13, "scale-out 3 -> 4 under load: p99 while shards move", (p99(during) or 0) * 1000,
        (p99(before) or 0) * 1000, "ms p99", "< 3x before, 0 failed, converged <= 60 s",
        ratio is not None and ratio < 3 and not load.failures and converged_s <= 60,
        {"operations": len(load.samples), "retries": load.retries, "failures": load.failures[:5],
         "converged_s": converged_s, "p99_during_over_before": ratio})
    for nd in nodes:
        nd.stop()
        started.remove(nd)


class Nginx:
    """nginx answering a fixed JSON body, the reference for GET."""

    def __init__(self, workdir, body):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="nginx-bench-", dir=workdir)
        with open(os.path.join(self.dir, "body.json"), "wb") as f:
            f.write(body)
        # Started as root, nginx's worker runs as an unprivileged user: it must be able to read the body.
        for d in (workdir, self.dir):
            os.chmod(d, 0o755)
        os.chmod(os.path.join(self.dir, "body.json"), 0o644)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off; worker_processes 1; pid {self.dir}/nginx.pid; error_log {self.dir}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {self.dir}; proxy_temp_path {self.dir}; fastcgi_temp_path {self.dir};
  uwsgi_temp_path {self.dir}; scgi_temp_path {self.dir};
  server {{ listen 127.0.0.1:{self.port};
    location = /user {{ default_type application/json; alias {self.dir}/body.json; }} }} }}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/user"
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                http("GET", self.url)
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def wrk(url, seconds, connections, script=None, key=None):
    """Runs wrk; returns requests/s and latency p50/p99 in ms."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency"]
    if key:
        args += ["-H", "Authorization: Bearer " + key]
    if script:
        args += ["-s", script]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return None
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = re.search(r"(\d+) requests in", out)
    if non2xx and int(non2xx.group(1)) > 0:  # a figure of error answers measures nothing
        raise RuntimeError(f"wrk {url}: {non2xx.group(1)} answers were not 2xx")
    return {"rate": rate, "p50_ms": pct(50), "p99_ms": pct(99), "requests": int(total.group(1)) if total else 0,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(0) if errors else ""}


def merge_runs(runs):
    """One figure from wrk runs of equal length: the mean rate, and the worst
    p50 and p99 of the slices (percentiles of slices do not average)."""
    def worst(k):
        vals = [r[k] for r in runs if r[k] is not None]
        return max(vals) if vals else None
    return {"rate": sum(r["rate"] for r in runs) / len(runs), "p50_ms": worst("p50_ms"), "p99_ms": worst("p99_ms"),
            "requests": sum(r["requests"] for r in runs), "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": "; ".join(r["socket_errors"] for r in runs if r["socket_errors"]),
            "slices": [{"rate": r["rate"], "p99_ms": r["p99_ms"]} for r in runs]}


def lua(workdir, name, text):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


POST_USERS = """
local counter = 0
local tid = "%s"
local auth = "Bearer %s"
local run = "%s"  -- unique per wrk run: wrk's math.random is not seeded, so it alone repeats
function setup(thread) thread:set("prefix", run .. tostring(math.random(1, 1e9))) end
function init(args) prefix = wrk.thread:get("prefix") end
request = function()
  counter = counter + 1
  local body = '{"email":"u' .. prefix .. '-' .. counter .. '@bench.example","name":"Bench"}'
  return wrk.format("POST", "/v1/tenants/" .. tid .. "/users", {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end
"""

PACED = """
function delay() return %f end
"""


def pgbench(dsn_parts, seconds, clients, script=None, select_only=False):
    host, port, db = dsn_parts
    args = [f"{PGBIN}/pgbench", "-h", host, "-p", port, "-U", "colony", "-n", "-c", str(clients), "-j", "2",
            "-T", str(max(1, int(seconds)))]
    if select_only:
        args += ["-S"]
    if script:
        args += ["-f", script]
    out = subprocess.run(args + [db], capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if not m:
        raise RuntimeError("pgbench: " + out.stdout + out.stderr)
    return float(m.group(1))


def psql(dsn_parts, sql):
    host, port, db = dsn_parts
    subprocess.run([f"{PGBIN}/../bin/psql" if os.path.exists(f"{PGBIN}/psql") else "psql", "-h", host, "-p", port,
                    "-U", "colony", "-d", db, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, capture_output=True)


def settle(dsn_parts):
    """After heavy writes PostgreSQL checkpoints and autovacuums for a while and would share the
    cores with the next pair: do that work now, then wait until no maintenance is running."""
    psql(dsn_parts, "CHECKPOINT")
    psql(dsn_parts, "VACUUM ANALYZE")
    host, port, db = dsn_parts
    deadline = time.time() + 60
    while time.time() < deadline:
        out = subprocess.run(["psql", "-h", host, "-p", port, "-U", "colony", "-d", db, "-Atc",
                              "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"],
                             capture_output=True, text=True).stdout.strip()
        if out == "0":
            return
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="seconds-long run with tiny sizes (used by make test)")
    ap.add_argument("--seconds", type=float, default=20, help="duration of each load run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--users", type=int, default=1_000_000, help="user actors activated for the memory figure")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--build-type", default=os.environ.get("COLONY_BENCH_BUILD_TYPE", "Release"))
    ap.add_argument("--only-cluster", action="store_true", help="figures 8 to 12 only")
    a = ap.parse_args()
    if a.smoke:
        a.seconds, a.connections, a.users = 1, 8, 2000
    colonyd = os.environ.get("COLONYD", os.path.join(ROOT, "build-release", "bin", "colonyd"))
    actors = os.environ.get("COLONY_BENCH_ACTORS", os.path.join(ROOT, "build-release", "bin", "colony-bench-actors"))
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="colony-bench-")
    pg_state = os.path.join(work, "pg")
    results, started = [], []

    def add(num, name, figure, reference, unit, target, met, detail=None):
        ratio = figure / reference if reference else None
        results.append({"figure_no": num, "name": name, "figure": figure, "reference": reference, "ratio": ratio,
                        "unit": unit, "target": target, "met": met, "detail": detail or {}})

    try:
        subprocess.run([PG_FIXTURE, "start", pg_state], check=True, capture_output=True)
        with open(os.path.join(pg_state, "dsn")) as f:
            dsn = f.read().strip()
        m = re.match(r"postgresql://colony@([\d.]+):(\d+)/(\w+)", dsn)
        pg = (m.group(1), m.group(2), m.group(3))

        if a.only_cluster:
            pgnode = Colonyd(colonyd, work, dsn)
            pg_key = pgnode.key
            pgnode.stop()
            cluster_figures(colonyd, work, dsn, pg_key, a, add, started)
            operations_figures(colonyd, work, dsn, pg_key, a, add, started)
            return report_of(a, results, colonyd, expected=6)

        # 1 and 7: GET one user from a live actor vs nginx with a body of the same size.
        node = Colonyd(colonyd, work)
        started.append(node)
        tid = node.tenant()
        _, ubody = http("POST", f"{node.base}/v1/tenants/{tid}/users", {"email": "get@bench.example", "name": "Get"},
                        node.key)
        uid = json.loads(ubody)["id"]
        url = f"{node.base}/v1/tenants/{tid}/users/{uid}"
        _, body = http("GET", url, key=node.key)
        ngx = Nginx(work, body)
        started.append(ngx)
        wrk(url, 1, a.connections, key=node.key)  # warm-up
        # The node and nginx alternate in four slices (as figures 4 and 6 do),
        # so that both see the same share of a VM whose speed drifts.
        rounds = 4 if a.seconds >= 8 else 1
        g_runs, n_runs = [], []
        for _ in range(rounds):
            g_runs.append(wrk(url, a.seconds / rounds, a.connections, key=node.key))
            n_runs.append(wrk(ngx.url, a.seconds / rounds, a.connections))
        g, n = merge_runs(g_runs), merge_runs(n_runs)
        add(1, "GET one user (live actor), wrk", g["rate"], n["rate"], "req/s", ">= 0.5x nginx; p99 <= 5 ms",
            g["rate"] >= 0.5 * n["rate"] and g["p99_ms"] is not None and g["p99_ms"] <= 5,
            {"colony": g, "nginx": n, "body_bytes": len(body)})
        half = g["rate"] / 2
        paced_lua = lua(work, "paced.lua", PACED % (a.connections * 1000.0 / max(half, 1.0)))
        p = wrk(url, a.seconds, a.connections, paced_lua, key=node.key)
        add(7, "GET latency at half of figure 1's rate", p["p99_ms"], None, "ms p99", "p99 <= 2 ms",
            p["p99_ms"] is not None and p["p99_ms"] <= 2, {"offered_rate": half, "achieved": p})

        # 14: the console's cost to its node, no viewer against 10 (an idle node).
        idle_node = Colonyd(colonyd, work)
        started.append(idle_node)
        console_figure(idle_node, a.seconds, add)
        idle_node.stop()
        started.remove(idle_node)

        # 3: POST create user on SQLite (this node).
        post_sqlite = wrk(f"{node.base}/", a.seconds, a.connections, lua(work, "post1.lua", POST_USERS % (tid, node.key, uuid.uuid4().hex[:8])))
        # 15: a no-op plugin hook on the same POST, at 2 connections.
        plugin_figure(node, a.seconds, add, http, lambda t, s: wrk(
            f"{node.base}/", s, 2, lua(work, f"post-{t}.lua", POST_USERS % (t, node.key, uuid.uuid4().hex[:8]))))
        # 16: on_event's rate, draining a backlog.
        plugin_events_figure(node, a.seconds, add, http, lambda t, s: wrk(
            f"{node.base}/", s, a.connections, lua(work, f"post-{t}.lua", POST_USERS % (t, node.key, uuid.uuid4().hex[:8]))))
        # 17: a victim's p99 while another tenant's plugins burn CPU within their limits.
        one = OneNode(node)
        plugin_noisy_figure(node, 2 if a.smoke else max(4.0, a.seconds), add, http,
                            lambda p, r, s: p99(paced(one, p, node.key, r, s)[0]) or float("inf"))
        post_sqlite["shutdown_s"] = node.stop()
        started.remove(node)

        # 2: POST create user on PostgreSQL (durable) vs pgbench INSERTs of the same row shape.
        pgnode = Colonyd(colonyd, work, dsn)
        started.append(pgnode)
        ptid = pgnode.tenant()
        post_pg = wrk(f"{pgnode.base}/", a.seconds, a.connections, lua(work, "post2.lua", POST_USERS % (ptid, pgnode.key, uuid.uuid4().hex[:8])))
        pg_key = pgnode.key  # the platform key of this database, for the cluster figures
        post_pg["shutdown_s"] = pgnode.stop()
        started.remove(pgnode)
        psql(pg, "CREATE TABLE IF NOT EXISTS bench_users (tenant_id text NOT NULL, id text NOT NULL, "
                 "email_lc text NOT NULL, name text NOT NULL, status text NOT NULL, roles text NOT NULL, "
                 "created_us bigint NOT NULL, updated_us bigint NOT NULL, version integer NOT NULL, "
                 "state bytea NOT NULL, PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email_lc))")
        ins = lua(work, "insert.sql",
                  "INSERT INTO bench_users VALUES ('t', md5(random()::text || clock_timestamp()::text), "
                  "md5(random()::text || clock_timestamp()::text) || '@bench.example', 'Bench', 'active', "
                  "',member,', 1, 1, 1, decode(repeat('ab', 180), 'hex'));\n")
        tps = pgbench(pg, a.seconds, a.connections, script=ins)
        settle(pg)
        add(2, "POST create user, PostgreSQL, durable", post_pg["rate"], tps, "req/s", ">= 1.5x pgbench tps",
            post_pg["rate"] >= 1.5 * tps, {"colony": post_pg, "pgbench_tps": tps})
        add(3, "POST create user, SQLite", post_sqlite["rate"], post_pg["rate"], "req/s", "reported", None,
            {"sqlite": post_sqlite, "postgres": post_pg})

        # 4: in process, through the registry vs bare CAF.
        r = json.loads(subprocess.run([actors, "registry", "--users", str(min(a.users, 10000)), "--inflight",
                                       str(a.connections), "--seconds", str(a.seconds), "--data-dir",
                                       tempfile.mkdtemp(dir=work)],
                                      capture_output=True, text=True, check=True, timeout=600).stdout)
        add(4, "request/response via the registry to a live entity", r["figure"], r["reference"], "req/s",
            ">= 0.5x bare CAF", r["figure"] >= 0.5 * r["reference"], r)

        # 5: memory per idle entity actor.
        r = json.loads(subprocess.run([actors, "memory", "--users", str(a.users), "--inflight", "256",
                                       "--data-dir", tempfile.mkdtemp(dir=work)],
                                      capture_output=True, text=True, check=True, timeout=3600).stdout)
        add(5, f"memory per idle user actor ({a.users} activated)", r["figure"], None, "bytes/actor",
            "<= 2048 bytes", r["figure"] <= 2048, r)

        # 6: activations per second from PostgreSQL vs pgbench primary-key SELECTs, alternating in
        # four rounds (as figure 4) once PostgreSQL has settled after the seeding.
        subprocess.run([f"{PGBIN}/pgbench", "-h", pg[0], "-p", pg[1], "-U", "colony", "-i", "-q", "-s", "1", pg[2]],
                       check=True, capture_output=True)
        cold, rounds = min(a.users, 100000 if not a.smoke else 2000), 4
        act = subprocess.Popen([actors, "activations", "--store", dsn, "--users", str(cold), "--inflight",
                                str(a.connections), "--rounds", str(rounds), "--paced", "1"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = act.stdout.readline()
            if "seeded" not in line:
                raise RuntimeError("colony-bench-actors activations: " + line)
            settle(pg)
            sel = []
            for i in range(rounds):
                act.stdin.write("go\n")
                act.stdin.flush()
                line = act.stdout.readline()  # a round's end, or the result after the last
                sel.append(pgbench(pg, a.seconds / rounds, a.connections, select_only=True))
            act.stdin.close()
            r = json.loads(line)
            if act.wait(timeout=600) != 0:
                raise RuntimeError("colony-bench-actors activations failed")
        finally:
            if act.poll() is None:
                act.kill()
        ref = sum(sel) / len(sel)
        add(6, "activations/s of cold users from PostgreSQL", r["figure"], ref, "act/s",
            ">= 0.5x pgbench -S", r["figure"] >= 0.5 * ref, {"colony": r, "pgbench_select_tps": sel})

        # 8, 9, 10: the cluster (PostgreSQL, nodes of one cluster on loopback).
        cluster_figures(colonyd, work, dsn, pg_key, a, add, started)
        operations_figures(colonyd, work, dsn, pg_key, a, add, started)
    finally:
        for s in started:
            try:
                s.stop()
            except Exception:
                pass
        subprocess.run([PG_FIXTURE, "stop", pg_state], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return report_of(a, results, colonyd, expected=17)


if __name__ == "__main__":
    sys.exit(main())
