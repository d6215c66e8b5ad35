#!/usr/bin/env python3
"""End-to-end tests of plugins: the registry (publish, list, read, immutable
versions, sources compiled at publication), a tenant's plugins (enable with a
config checked against the version's schema, upgrade, disable, the plan's
maxPlugins), and the write-path hooks (before_user_create and
before_user_update accepting, changing and rejecting; failure policies; a
runaway plugin ended by its limits; the circuit breaker).

Environment: see colony_testkit/env.py.
"""
import time
import unittest
import uuid

from colony_testkit import NodeCase, Node, wait_until

EMAIL_DOMAINS = """
return {
  before_user_create = function(ctx, user)
    local at = #user.email - #ctx.config.domain
    if user.email:sub(at + 1) ~= ctx.config.domain or user.email:sub(at, at) ~= "@" then
      return nil, "only addresses at " .. ctx.config.domain .. " may sign up"
    end
    user.attributes = user.attributes or {}
    user.attributes.checkedBy = ctx.plugin .. "@" .. ctx.version
    user.attributes.tenant = ctx.tenantId
    return user
  end,
  before_user_update = function(ctx, user, patch)
    for _, r in ipairs(user.roles) do
      if r == "owner" and not ctx.config.allowOwners then return nil, "no new owners" end
    end
    if patch.name then user.name = string.upper(patch.name) end
    return user
  end,
}
"""

SCHEMA = {"type": "object", "required": ["domain"], "additionalProperties": False,
          "properties": {"domain": {"type": "string", "minLength": 3},
                         "allowOwners": {"type": "boolean"}}}


class Plugins(NodeCase):
    def publish(self, name=None, version="1.0.0", source=EMAIL_DOMAINS, hooks=("before_user_create",), **more):
        body = {"name": name or "p-" + uuid.uuid4().hex[:8], "version": version, "source": source,
                "hooks": list(hooks), **more}
        return self.node.json("POST", "/v1/plugins", body)

    def published(self, source, hooks=("before_user_create",), **more):
        status, _, doc = self.publish(source=source, hooks=hooks, **more)
        self.assertEqual(status, 201, doc)
        return doc["name"]

    def enable(self, tid, name, version="1.0.0", config=None, policy=None, auth=True):
        body = {"version": version, "config": config or {}}
        if policy:
            body["failurePolicy"] = policy
        return self.node.json("PUT", f"/v1/tenants/{tid}/plugins/{name}", body, auth=auth)

    def key(self, tid, roles):
        status, _, doc = self.node.json("POST", f"/v1/tenants/{tid}/api-keys", {"name": "k", "roles": roles})
        self.assertEqual(status, 201, doc)
        return doc["key"]

    def user(self, tid, email, **more):
        return self.node.json("POST", f"/v1/tenants/{tid}/users", {"email": email, "name": "U", **more})

    def test_registry_publish_read_and_immutable_versions(self):
        n = self.node
        name = "domains-" + uuid.uuid4().hex[:6]
        status, hdrs, doc = self.publish(name, hooks=["before_user_create", "before_user_update"],
                                         configSchema=SCHEMA, description="an allow-list of e-mail domains",
                                         permissions={"kv": True})
        self.assertEqual(status, 201, doc)
        self.assertEqual(hdrs["Location"], f"/v1/plugins/{name}/versions/1.0.0")
        self.assertEqual(doc["hooks"], ["before_user_create", "before_user_update"])
        self.assertEqual(len(doc["sha256"]), 64)
        self.assertNotIn("source", doc)
        self.assertEqual(self.publish(name, version="1.10.0")[0], 201)
        self.assertEqual(self.publish(name, version="1.2.0")[0], 201)
        self.assertEqual(self.publish(name, version="2.0.0-beta.1")[0], 201)
        # Immutable: the same version again is a conflict, whatever its source.
        again = self.publish(name, source="return { before_user_create = function(c, u) return u end }")
        self.assertEqual(self.assertProblem(again, 409, "conflict")["status"], 409)

        status, _, one = n.json("GET", f"/v1/plugins/{name}")
        self.assertEqual(status, 200)
        self.assertEqual(one["versions"], ["1.0.0", "1.2.0", "1.10.0", "2.0.0-beta.1"])  # semver order
        self.assertEqual(one["latestVersion"], "1.10.0")  # a pre-release is not the latest
        self.assertEqual(one["latest"]["version"], "1.10.0")
        self.assertNotIn("source", one["latest"])
        status, _, vs = n.json("GET", f"/v1/plugins/{name}/versions")
        self.assertEqual([v["version"] for v in vs["data"]], one["versions"])
        self.assertEqual(vs["data"][0]["description"], "an allow-list of e-mail domains")
        status, _, v = n.json("GET", f"/v1/plugins/{name}/versions/1.0.0")
        self.assertEqual(v["source"], EMAIL_DOMAINS)  # the platform sees the source
        self.assertEqual(v["configSchema"]["required"], ["domain"])
        self.assertProblem(n.json("GET", f"/v1/plugins/{name}/versions/9.9.9"), 404, "not-found")
        self.assertProblem(n.json("GET", "/v1/plugins/no-such-plugin-here"), 404, "not-found")

        status, _, page = n.json("GET", "/v1/plugins?limit=200")
        self.assertEqual(status, 200)
        self.assertIn(name, [p["name"] for p in page["data"]])
        first = n.json("GET", "/v1/plugins?limit=1")[2]
        self.assertEqual(len(first["data"]), 1)
        second = n.json("GET", "/v1/plugins?limit=1&after=" + first["nextAfter"])[2]
        self.assertGreater(second["data"][0]["name"], first["data"][0]["name"])

        # Who may: a tenant's owner or admin reads the catalog (no source), a member
        # does not, and only the platform publishes.
        tid = self.tenant()["id"]
        owner, member = self.key(tid, ["owner"]), self.key(tid, ["member"])
        status, _, v = n.json("GET", f"/v1/plugins/{name}/versions/1.0.0", auth=owner)
        self.assertEqual(status, 200)
        self.assertNotIn("source", v)
        self.assertProblem(n.json("GET", "/v1/plugins", auth=member), 403, "forbidden")
        body = {"name": "x-" + uuid.uuid4().hex[:6], "version": "1.0.0", "source": EMAIL_DOMAINS,
                "hooks": ["before_user_create"]}
        self.assertProblem(n.json("POST", "/v1/plugins", body, auth=owner), 403, "forbidden")

    def test_bad_publications_are_400s_naming_the_field(self):
        bad = self.assertProblem(self.publish(source="return { before_user_create = function(ctx, u)\n  retur u\nend }"),
                                 400, "validation-error")
        self.assertEqual(bad["errors"][0]["field"], "source")
        self.assertIn(":2:", bad["errors"][0]["message"])  # the line of the syntax error
        bad = self.assertProblem(self.publish(source="return 42"), 400, "validation-error")
        self.assertEqual(bad["errors"][0]["field"], "source")
        only_create = "return { before_user_create = function(c, u) return u end }"
        bad = self.assertProblem(self.publish(source=only_create, hooks=["before_user_update"]), 400, "validation-error")
        self.assertIn("before_user_update", bad["detail"])  # declared, but the table has no such function
        bad = self.assertProblem(self.publish(hooks=["before_lunch"]), 400, "validation-error")
        self.assertEqual(bad["errors"][0]["field"], "hooks[0]")
        for field, body in (("name", {"name": "Bad_Name"}), ("version", {"version": "1.0"}),
                            ("version", {"version": "01.0.0"}), ("permissions.http[0]",
                                                                  {"permissions": {"http": ["Bad Host"]}})):
            bad = self.assertProblem(self.publish(**body), 400, "validation-error")
            self.assertEqual(bad["errors"][0]["field"], field, body)
        bad = self.assertProblem(self.publish(configSchema={"type": "object",
                                                            "properties": {"d": {"type": "string", "pattern": "^a"}}}),
                                 400, "validation-error")
        self.assertEqual(bad["errors"][0]["field"], "configSchema.properties.d.pattern")
        # A chunk that never ends is stopped by the limits at publication too.
        started = time.monotonic()
        bad = self.assertProblem(self.publish(source="while true do end"), 400, "validation-error")
        self.assertLess(time.monotonic() - started, 5)
        self.assertIn("limit", bad["detail"])

    def test_enable_upgrade_disable_and_the_plan_limit(self):
        n = self.node
        name = self.published(EMAIL_DOMAINS, configSchema=SCHEMA)
        tid = self.tenant(plan="free")["id"]  # free: one plugin
        bad = self.assertProblem(self.enable(tid, name, config={"domain": 7, "extra": 1}), 400, "validation-error")
        self.assertEqual(sorted(e["field"] for e in bad["errors"]), ["config.domain", "config.extra"])
        bad = self.assertProblem(self.enable(tid, name, config={}), 400, "validation-error")
        self.assertEqual(bad["errors"][0]["field"], "config.domain")
        bad = self.assertProblem(self.enable(tid, name, version="3.0.0", config={"domain": "a.example"}), 400)
        self.assertEqual(bad["errors"][0]["field"], "version")
        self.assertProblem(self.enable(tid, name, config={"domain": "a.example"}, policy="maybe"), 400)
        member = self.key(tid, ["member"])
        self.assertProblem(self.enable(tid, name, config={"domain": "a.example"}, auth=member), 403)

        status, hdrs, b = self.enable(tid, name, config={"domain": "a.example"})
        self.assertEqual(status, 201, b)
        self.assertEqual(hdrs["Location"], f"/v1/tenants/{tid}/plugins/{name}")
        self.assertEqual((b["version"], b["failurePolicy"], b["config"]), ("1.0.0", "fail", {"domain": "a.example"}))
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}")[2]["usage"]["plugins"], 1)
        # The plan allows one plugin.
        other = self.published(EMAIL_DOMAINS)
        over = self.assertProblem(self.enable(tid, other, config={"domain": "x.example"}), 403, "limit-exceeded")
        self.assertEqual(over["limitName"], "maxPlugins")
        # An upgrade (a new version and config) is one change, in place.
        self.assertEqual(self.publish(name, version="1.1.0", configSchema=SCHEMA)[0], 201)
        status, _, up = self.enable(tid, name, version="1.1.0", config={"domain": "b.example"}, policy="ignore")
        self.assertEqual(status, 200, up)
        self.assertEqual((up["version"], up["failurePolicy"], up["enabledAt"]), ("1.1.0", "ignore", b["enabledAt"]))
        status, _, listed = n.json("GET", f"/v1/tenants/{tid}/plugins")
        self.assertEqual([p["name"] for p in listed["data"]], [name])
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}/plugins/{name}")[2]["version"], "1.1.0")
        self.assertEqual(n.request("DELETE", f"/v1/tenants/{tid}/plugins/{name}")[0], 204)
        self.assertProblem(n.json("DELETE", f"/v1/tenants/{tid}/plugins/{name}"), 404, "not-found")
        self.assertProblem(n.json("GET", f"/v1/tenants/{tid}/plugins/{name}"), 404, "not-found")
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}")[2]["usage"]["plugins"], 0)
        # Every change is a domain event of the tenant and an audit record.
        events = [e["event"]["type"] for e in n.json("GET", f"/v1/tenants/{tid}/events?limit=100")[2]["data"]]
        self.assertEqual([t for t in events if t.startswith("plugin.")],
                         ["plugin.enabled", "plugin.updated", "plugin.disabled"])
        actions = [r["action"] for r in n.json("GET", f"/v1/tenants/{tid}/audit-log?limit=100")[2]["data"]]
        for a in ("plugin.enabled", "plugin.updated", "plugin.disabled"):
            self.assertIn(a, actions)

    def test_before_user_hooks_accept_change_and_reject(self):
        n = self.node
        name = self.published(EMAIL_DOMAINS, hooks=["before_user_create", "before_user_update"], configSchema=SCHEMA)
        tid = self.tenant(plan="starter")["id"]
        self.assertEqual(self.enable(tid, name, config={"domain": "corp.example"})[0], 201)
        rejected = self.assertProblem(self.user(tid, "eve@elsewhere.example"), 422, "plugin-rejected")
        self.assertEqual(rejected["plugin"], name)
        self.assertEqual(rejected["reason"], "only addresses at corp.example may sign up")
        self.assertProblem(self.user(tid, "eve@notcorp.example"), 422, "plugin-rejected")
        status, _, u = self.user(tid, "ann@corp.example", attributes={"team": "red"})
        self.assertEqual(status, 201, u)
        self.assertEqual(u["attributes"], {"team": "red", "checkedBy": name + "@1.0.0", "tenant": tid})
        stored = n.json("GET", f"/v1/tenants/{tid}/users/{u['id']}")[2]
        self.assertEqual(stored["attributes"], u["attributes"])
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}")[2]["usage"]["users"], 1)  # the rejected ones took no seat

        status, _, p = n.json("PATCH", f"/v1/tenants/{tid}/users/{u['id']}", {"name": "ann smith"},
                              {"Content-Type": "application/merge-patch+json"})
        self.assertEqual(status, 200, p)
        self.assertEqual(p["name"], "ANN SMITH")  # changed by the hook
        self.assertEqual(p["attributes"], u["attributes"])
        no = self.assertProblem(n.json("PATCH", f"/v1/tenants/{tid}/users/{u['id']}", {"roles": ["owner"]},
                                       {"Content-Type": "application/merge-patch+json"}), 422, "plugin-rejected")
        self.assertEqual(no["reason"], "no new owners")
        self.assertEqual(n.json("GET", f"/v1/tenants/{tid}/users/{u['id']}")[2]["roles"], ["member"])
        # Another tenant without the plugin is not affected.
        other = self.tenant()["id"]
        self.assertEqual(self.user(other, "eve@elsewhere.example")[0], 201)

    def test_failure_policies_runaway_code_and_the_circuit_breaker(self):
        n = self.node
        broken = self.published("return { before_user_create = function(ctx, u) error('boom') end }")
        tid = self.tenant(plan="starter")["id"]
        self.assertEqual(self.enable(tid, broken)[0], 201)
        failed = self.assertProblem(self.user(tid, "a@x.example"), 503, "plugin-failed")
        self.assertEqual(failed["plugin"], broken)
        self.assertIn("boom", failed["detail"])
        self.assertEqual(self.enable(tid, broken, policy="ignore")[0], 200)
        self.assertEqual(self.user(tid, "a@x.example")[0], 201)  # skipped
        self.assertEqual(n.request("DELETE", f"/v1/tenants/{tid}/plugins/{broken}")[0], 204)

        # A plugin may not set members other than the documented ones.
        sneaky = self.published("return { before_user_create = function(ctx, u) u.id = 'x'; return u end }")
        self.assertEqual(self.enable(tid, sneaky)[0], 201)
        bad = self.assertProblem(self.user(tid, "b@x.example"), 503, "plugin-failed")
        self.assertIn("'id'", bad["detail"])
        self.assertEqual(n.request("DELETE", f"/v1/tenants/{tid}/plugins/{sneaky}")[0], 204)

        # Runaway code is ended by its limits, each call quickly, and the node stays healthy;
        # after 3 broken limits in a row (this node's threshold) the plugin is suspended.
        spin = self.published("return { before_user_create = function(ctx, u) while true do end end }")
        self.assertEqual(self.enable(tid, spin)[0], 201)
        for i in range(3):
            started = time.monotonic()
            doc = self.assertProblem(self.user(tid, f"s{i}@x.example"), 503, "plugin-failed")
            self.assertLess(time.monotonic() - started, 2)
            self.assertIn(doc["fault"], ("instruction-limit", "time-limit"))
            self.assertEqual(n.request("GET", "/readyz")[0], 200)

        def suspended():
            b = n.json("GET", f"/v1/tenants/{tid}/plugins/{spin}")[2]
            return b if b.get("suspended") else None
        deadline = time.time() + 10
        while not suspended() and time.time() < deadline:
            time.sleep(0.05)
        b = suspended()
        self.assertIsNotNone(b)
        self.assertIn("broken limits in a row", b["suspendedReason"])
        events = [e["event"]["type"] for e in n.json("GET", f"/v1/tenants/{tid}/events?limit=200")[2]["data"]]
        self.assertIn("plugin.suspended", events)
        # Each broken limit is in the tenant's audit log and in the metrics, and so is the suspension.
        audit = wait_until(lambda: [r for r in n.json("GET", f"/v1/tenants/{tid}/audit-log?action=plugin.limit_exceeded")
                                    [2]["data"] if r["actor"] == "plugin:" + spin] or None,
                           timeout=10, what="the broken limits audited")
        self.assertGreaterEqual(len(audit), 3)
        self.assertEqual(audit[0]["target"], f"plugin:{spin}@1.0.0")
        self.assertEqual(audit[0]["outcome"], "failure")
        self.assertRegex(audit[0]["detail"], r"^before_user_create: (instruction|time)-limit: plugin stopped")
        metrics = n.request("GET", "/metrics")[2].decode()
        calls = [line for line in metrics.splitlines() if line.startswith("colony_plugin_calls_total{")
                 and f'plugin="{spin}"' in line and 'hook="before_user_create"' in line and "-limit" in line]
        self.assertEqual(sum(float(line.rsplit(" ", 1)[1]) for line in calls), 3, calls)
        self.assertIn(f'colony_plugin_suspensions_total{{plugin="{spin}"}} 1', metrics)
        self.assertEqual(self.user(tid, "after@x.example")[0], 201)  # a suspended plugin's hooks are skipped
        # The tenant enables it again (PUT), and it runs again.
        status, _, again = self.enable(tid, spin)
        self.assertEqual((status, again["suspended"]), (200, False))
        self.assertProblem(self.user(tid, "again@x.example"), 503, "plugin-failed")

    def test_http_hook_serves_its_routes(self):
        n = self.node
        src = """
return {
  http = function(ctx, req)
    if req.path == "/echo" then
      return { status = 201, headers = { ["X-Plugin"] = ctx.plugin, ["Content-Type"] = "application/json" },
               body = { method = req.method, path = req.path, q = req.query.q, body = req.body,
                        type = req.headers["content-type"], roles = req.caller.roles, tenant = ctx.tenantId,
                        requestId = ctx.requestId, auth = req.headers["authorization"] or "none" } }
    elseif req.path == "/text" then
      return { body = "plain " .. ctx.config.word }
    elseif req.path == "/bad-header" then
      return { headers = { ["Content-Length"] = "1" } }
    elseif req.path == "/bad-status" then
      return { status = 99 }
    end
    return { status = 404, body = { error = "no route " .. req.path } }
  end,
}
"""
        name = self.published(src, hooks=["http"])
        tid = self.tenant(plan="starter")["id"]
        base = f"/v1/tenants/{tid}/x/{name}"
        self.assertProblem(n.json("GET", base + "/echo"), 404, "not-found")  # not enabled yet
        self.assertEqual(self.enable(tid, name, config={"word": "hello"})[0], 201)
        status, hdrs, doc = n.json("POST", base + "/echo?q=1&r=2", {"a": 1},
                                   {"X-Request-Id": "01a24a5d-4e49-7121-b5e9-f426dc5cb878"})
        self.assertEqual(status, 201, doc)
        self.assertEqual(hdrs["X-Plugin"], name)
        self.assertEqual((doc["method"], doc["path"], doc["q"], doc["tenant"]), ("POST", "/echo", "1", tid))
        self.assertEqual(doc["body"], '{"a": 1}')
        self.assertEqual(doc["type"], "application/json")
        self.assertEqual(doc["auth"], "none")  # credentials never reach a plugin
        self.assertEqual(doc["requestId"], "01a24a5d-4e49-7121-b5e9-f426dc5cb878")
        status, hdrs, body = n.request("GET", base + "/text")
        self.assertEqual((status, body), (200, b"plain hello"))
        self.assertTrue(hdrs["Content-Type"].startswith("text/plain"))
        self.assertEqual(n.json("GET", base + "/deeper/still/here")[2]["error"], "no route /deeper/still/here")
        for path, words in (("/bad-header", "content-length"), ("/bad-status", "status")):
            bad = self.assertProblem(n.json("GET", base + path), 503, "plugin-failed")
            self.assertEqual(bad["fault"], "answer")
            self.assertIn(words, bad["detail"])
        # Authenticated like any tenant route: another tenant's key does not reach it.
        other = self.tenant()["id"]
        self.assertProblem(n.json("GET", base + "/echo", auth=self.key(other, ["owner"])), 404, "not-found")
        self.assertProblem(n.json("GET", base + "/echo", auth=False), 401, "unauthorized")
        viewer = self.key(tid, ["viewer"])
        status, _, doc = n.json("PUT", base + "/echo", {}, auth=viewer)
        self.assertEqual((status, doc["roles"]), (201, ["viewer"]))
        # A plugin without an http hook serves nothing there.
        plain = self.published("return { before_user_create = function(c, u) return u end }")
        self.assertEqual(self.enable(tid, plain)[0], 201)
        self.assertProblem(n.json("GET", f"/v1/tenants/{tid}/x/{plain}/a"), 404, "not-found")

    def test_on_event_gets_every_event_in_order_with_retries_and_dead_letters(self):
        n = self.node
        src = """
local seen = {}
local tries = {}
return {
  on_event = function(ctx, ev)
    local email = ev.userChanged and ev.userChanged.state.email or ""
    if email:sub(1, 3) == "bad" then
      tries[ev.id] = (tries[ev.id] or 0) + 1
      error("cannot take " .. email)
    end
    if email:sub(1, 5) == "flaky" and not tries[ev.id] then
      tries[ev.id] = 1
      error("not yet")
    end
    seen[#seen + 1] = { type = ev.type, id = ev.aggregateId, tenant = ctx.tenantId, requestId = ctx.requestId,
                        email = email, tries = tries[ev.id] or 0, word = ctx.config.word }
  end,
  http = function(ctx, req) return { body = { seen = seen, tries = tries } } end,
}
"""
        name = self.published(src, hooks=["on_event", "http"])
        tid = self.tenant(plan="starter")["id"]
        self.assertEqual(self.user(tid, "before@x.example")[0], 201)  # before enabling: not handed over
        self.assertEqual(self.enable(tid, name, config={"word": "w"})[0], 201)
        rid = str(uuid.uuid4())
        status, _, u1 = n.json("POST", f"/v1/tenants/{tid}/users", {"email": "a@x.example", "name": "A"},
                               {"X-Request-Id": rid})
        self.assertEqual(status, 201, u1)
        u2 = self.user(tid, "b@x.example")[2]
        self.assertEqual(n.json("PATCH", f"/v1/tenants/{tid}/users/{u2['id']}", {"name": "B2"},
                                {"Content-Type": "application/merge-patch+json"})[0], 200)
        self.assertEqual(n.request("DELETE", f"/v1/tenants/{tid}/users/{u1['id']}")[0], 204)

        def seen(count):
            deadline = time.time() + 15
            while time.time() < deadline:
                doc = n.json("GET", f"/v1/tenants/{tid}/x/{name}/seen")[2]
                if len(doc["seen"]) >= count:
                    return doc
                time.sleep(0.05)
            self.fail(f"on_event saw {doc} after 15 s, not {count} events")
        doc = seen(5)
        self.assertEqual([(e["type"], e["id"]) for e in doc["seen"]],
                         [("plugin.enabled", tid),  # its own enabling comes first
                          ("user.created", u1["id"]), ("user.created", u2["id"]), ("user.updated", u2["id"]),
                          ("user.deleted", u1["id"])])
        first = doc["seen"][1]
        self.assertEqual((first["tenant"], first["requestId"], first["word"]), (tid, rid, "w"))
        # Another tenant's events never reach it.
        other = self.tenant()["id"]
        self.assertEqual(self.user(other, "c@other.example")[0], 201)

        # A failing event is tried again later (the events after it wait: per-entity order), and
        # after plugins.event-attempts (3 here) it goes to the dead letters and the feed moves on.
        self.assertEqual(self.user(tid, "bad@x.example")[0], 201)
        self.assertEqual(self.user(tid, "flaky@x.example")[0], 201)
        self.assertEqual(self.user(tid, "late@x.example")[0], 201)
        doc = seen(7)
        self.assertEqual([e["email"] for e in doc["seen"][5:]], ["flaky@x.example", "late@x.example"])
        self.assertEqual(doc["seen"][5]["tries"], 1)  # failed once, then taken
        self.assertEqual(list(doc["tries"].values()).count(3), 1)  # the bad one: three attempts
        status, _, dead = n.json("GET", f"/v1/tenants/{tid}/plugins/{name}/dead-letters")
        self.assertEqual(status, 200, dead)
        self.assertEqual(len(dead["data"]), 1, dead)
        d = dead["data"][0]
        self.assertEqual((d["eventType"], d["attempts"]), ("user.created", 3))
        self.assertIn("cannot take bad@x.example", d["error"])
        self.assertEqual(d["event"]["userChanged"]["state"]["email"], "bad@x.example")
        self.assertEqual(d["event"]["id"], d["eventId"])
        binding = n.json("GET", f"/v1/tenants/{tid}/plugins/{name}")[2]
        self.assertEqual(binding["events"]["attempts"], 0)
        self.assertFalse(binding["events"]["paused"])
        self.assertGreater(binding["events"]["position"], 0)
        self.assertEqual(n.json("GET", f"/v1/tenants/{other}/plugins/{name}/dead-letters")[2]["data"], [])
        self.assertProblem(n.json("GET", f"/v1/tenants/{tid}/plugins/{name}/dead-letters?limit=0"), 400)

        # Disabled: no cursor, no more events; enabled again: from then on only.
        self.assertEqual(n.request("DELETE", f"/v1/tenants/{tid}/plugins/{name}")[0], 204)
        self.assertEqual(self.user(tid, "gone@x.example")[0], 201)
        self.assertEqual(self.enable(tid, name, config={"word": "w"})[0], 201)
        self.assertEqual(self.user(tid, "back@x.example")[0], 201)
        seen(9)
        time.sleep(0.3)
        doc = n.json("GET", f"/v1/tenants/{tid}/x/{name}/seen")[2]
        self.assertEqual([(e["type"], e["email"]) for e in doc["seen"][7:]],
                         [("plugin.enabled", ""), ("user.created", "back@x.example")])


if __name__ == "__main__":
    unittest.main()
