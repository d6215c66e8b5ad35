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
