"""Figure 15 (issue #18): what a plugin hook adds to a write. POST create
user on one node for two tenants of the same plan, one with a no-op
before_user_create enabled (each call crosses to the plugin entity, runs the
hook in its Lua state and converts the user to Lua and back) and one
without, at low concurrency (2 connections) so that p50 is the service time
and not a queue. The two alternate in slices; the figure is the median of
the hook tenant's slice p50s, the reference the median of the other's; the
target is on their difference."""
import json
import statistics
import time
import urllib.error
import uuid

NO_OP = "return { before_user_create = function(ctx, user) return user end }"


def plugin_figure(node, seconds, add, http, post_users):
    """`post_users(tid, seconds)` runs the POST load and returns wrk's figures."""
    name = "bench-noop-" + uuid.uuid4().hex[:6]
    status, body = http("POST", node.base + "/v1/plugins",
                        {"name": name, "version": "1.0.0", "source": NO_OP, "hooks": ["before_user_create"]}, node.key)
    if status != 201:
        raise RuntimeError(f"figure 15: publishing answered {status} {body!r}")
    plain, hooked = node.tenant(), node.tenant()
    status, body = http("PUT", f"{node.base}/v1/tenants/{hooked}/plugins/{name}", {"version": "1.0.0"}, node.key)
    if status != 201:
        raise RuntimeError(f"figure 15: enabling answered {status} {body!r}")
    # A warm-up of each: activates both tenants and the plugin entity.
    post_users(plain, 1)
    post_users(hooked, 1)
    rounds = 4 if seconds >= 8 else 1
    with_hook, without = [], []
    for _ in range(rounds):
        without.append(post_users(plain, seconds / rounds / 2))
        with_hook.append(post_users(hooked, seconds / rounds / 2))
    p50_with = statistics.median(r["p50_ms"] for r in with_hook) * 1000
    p50_without = statistics.median(r["p50_ms"] for r in without) * 1000
    added = p50_with - p50_without
    add(15, "POST create user with a no-op before_user_create hook", p50_with, p50_without, "us p50",
        "added p50 <= 20 us", added <= 20,
        {"added_us": added, "with_hook": with_hook, "without": without,
         "users_with_hook": json.loads(http("GET", f"{node.base}/v1/tenants/{hooked}", key=node.key)[1])["usage"]})


COUNTER = """
local n = 0
return {
  before_user_create = function(ctx, user)
    if ctx.config.spin then while true do end end
    return user
  end,
  on_event = function(ctx, ev)
    if ev.type == "user.created" and ev.userChanged.state.email:sub(1, 1) == "u" then n = n + 1 end
  end,
  http = function(ctx, req) return { body = { n = n } } end,
}
"""


def plugin_events_figure(node, seconds, add, http, post_users):
    """Figure 16: on_event invocations per second (one plugin entity runs its
    events one after another, so this is one core's rate). A backlog is made
    while the plugin is suspended (its before_user_create spins until the
    circuit breaker opens; a suspended plugin's cursor waits), then a PUT
    resumes it and the figure is the backlog over the time it takes to drain."""
    name = "bench-events-" + uuid.uuid4().hex[:6]
    status, body = http("POST", node.base + "/v1/plugins",
                        {"name": name, "version": "1.0.0", "source": COUNTER,
                         "hooks": ["before_user_create", "on_event", "http"]}, node.key)
    if status != 201:
        raise RuntimeError(f"figure 16: publishing answered {status} {body!r}")
    tid = node.tenant()
    url = f"{node.base}/v1/tenants/{tid}/plugins/{name}"
    http("PUT", url, {"version": "1.0.0", "config": {"spin": True}, "failurePolicy": "ignore"}, node.key)
    for i in range(50):  # ignored failures until the breaker suspends it
        http("POST", f"{node.base}/v1/tenants/{tid}/users", {"email": f"spin-{i}@bench.example", "name": "S"},
             node.key)
        if json.loads(http("GET", url, key=node.key)[1]).get("suspended"):
            break
    else:
        raise RuntimeError("figure 16: the plugin was not suspended")
    post_users(tid, max(1.0, seconds / 2))
    users = json.loads(http("GET", f"{node.base}/v1/tenants/{tid}", key=node.key)[1])["usage"]["users"]
    backlog = users - i - 1
    started = time.monotonic()
    http("PUT", url, {"version": "1.0.0", "config": {"spin": False}}, node.key)
    seen = 0
    while time.monotonic() - started < 120:
        try:
            seen = json.loads(http("GET", f"{node.base}/v1/tenants/{tid}/x/{name}/n", key=node.key)[1])["n"]
        except urllib.error.HTTPError:
            seen = 0
        if seen >= backlog:
            break
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    if seen < backlog:
        raise RuntimeError(f"figure 16: on_event handled {seen} of {backlog} events in 120 s")
    add(16, "on_event invocations/s (a small handler, one plugin entity)", backlog / elapsed, None, "events/s",
        "reported", None, {"backlog": backlog, "drain_s": elapsed})


BURNER = """
return {
  http = function(ctx, req)
    -- as much CPU as a call may take and stay within its limits (35 ms of
    -- the 50 ms budget, ~3M of the 10M instructions): the breaker never opens
    local t0, x = os.clock(), 0
    while os.clock() - t0 < 0.035 do x = x + 1 end
    return { body = { spun = x } }
  end,
}
"""


def plugin_noisy_figure(node, seconds, add, http, paced_get, burners=2, callers=4):
    """Figure 17: a victim tenant's p99 (paced GETs of one of its users at
    50/s) while another tenant keeps `burners` plugins busy with hooks that
    spend as much CPU as a call may without breaking a limit (so the breaker
    never stops them), `callers` connections each; against the victim alone,
    alternating. `paced_get(path, rate, seconds)` returns the p99 latency (s)."""
    import threading
    import urllib.request
    victim, attacker = node.tenant(), node.tenant()
    status, body = http("POST", f"{node.base}/v1/tenants/{victim}/users",
                        {"email": "victim@bench.example", "name": "V"}, node.key)
    uid = json.loads(body)["id"]
    names = []
    for i in range(burners):
        name = f"bench-burn-{i}-" + uuid.uuid4().hex[:6]
        http("POST", node.base + "/v1/plugins", {"name": name, "version": "1.0.0", "source": BURNER,
                                                 "hooks": ["http"]}, node.key)
        status, body = http("PUT", f"{node.base}/v1/tenants/{attacker}/plugins/{name}", {"version": "1.0.0"},
                            node.key)
        if status != 201:
            raise RuntimeError(f"figure 17: enabling answered {status} {body!r}")
        names.append(name)
    path = f"/v1/tenants/{victim}/users/{uid}"
    paced_get(path, 50, 1)  # warm-up

    def burn(name, stop, counts):
        while not stop.is_set():
            req = urllib.request.Request(f"{node.base}/v1/tenants/{attacker}/x/{name}/burn",
                                         headers={"Authorization": "Bearer " + node.key})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
                    counts[r.status] = counts.get(r.status, 0) + 1
            except Exception as e:  # a 503 would mean the breaker opened: counted, and reported
                counts[str(e)[:40]] = counts.get(str(e)[:40], 0) + 1

    rounds = 2 if seconds >= 4 else 1
    alone, noisy, attack = [], [], []
    for _ in range(rounds):
        alone.append(paced_get(path, 50, seconds / rounds / 2))
        stop, counts = threading.Event(), {}
        ts = [threading.Thread(target=burn, args=(n, stop, counts)) for n in names for _ in range(callers)]
        for t in ts:
            t.start()
        time.sleep(0.5)  # the burners' queues fill
        noisy.append(paced_get(path, 50, seconds / rounds / 2))
        stop.set()
        for t in ts:
            t.join()
        attack.append(counts)
    with_burn, without = max(noisy), max(alone)
    add(17, f"noisy neighbour: victim p99 while {burners} plugins of another tenant burn CPU", with_burn * 1000,
        without * 1000, "ms p99", "<= 1.5x the victim alone", with_burn <= 1.5 * without,
        {"victim_alone_s": alone, "victim_with_burners_s": noisy, "burner_calls": attack})

