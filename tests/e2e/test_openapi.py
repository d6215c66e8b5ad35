#!/usr/bin/env python3
"""The spec is the truth: drives every route of a running node (success and
error paths, with each role), records every answer, and validates status,
media type and body against the /openapi.json the node serves with a real
OpenAPI 3.1 / JSON Schema 2020-12 validator (tests/openapi/validate.mjs:
@seriousme/openapi-schema-validator and Ajv, from the committed lock file).

Environment: colony_testkit/env.py; COLONY_OPENAPI_CHECK names validate.mjs.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from colony_testkit import AUDIENCE, ISSUER, SECRET, STRIPE_SECRET, Node, stripe_headers, token  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.environ.get("COLONY_OPENAPI_CHECK", os.path.join(HERE, "..", "openapi", "validate.mjs"))


class Recorder:
    def __init__(self, node):
        self.node = node
        self.exchanges = []

    def __call__(self, method, route, path, body=None, who=None, headers=None, raw=None, label=""):
        headers = dict(headers or {})
        if who:
            headers["Authorization"] = "Bearer " + who
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.node.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        self.exchanges.append({"method": method, "route": route, "status": resp.status, "label": label,
                               "contentType": hdrs.get("content-type", ""), "headers": hdrs,
                               "body": payload.decode("utf-8", "replace")})
        doc = None
        if payload and "json" in hdrs.get("content-type", ""):
            doc = json.loads(payload)
        return resp.status, hdrs, doc


class OpenApiConformance(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="colony-e2e-openapi-")
        conf = os.path.join(self.dir, "plans.conf")
        with open(conf, "w") as f:  # a plan small enough to hit its rate limit
            f.write("[colony.plans]\nfree = { max-users = 5 }\npro = { max-users = 100 }\n"
                    "tiny = { max-users = 2, requests-per-second = 1, burst = 2 }\n")
        self.node = Node(self.dir, ["--config", conf, "--auth-jwt-hs256-secret", SECRET, "--auth-issuer", ISSUER,
                                    "--auth-audience", AUDIENCE, "--stripe-webhook-secret", STRIPE_SECRET,
                                    "--http.body-limit", "64KiB", "--plugins.event-attempts", "1",
                                    "--plugins.event-poll", "50ms"])

    def tearDown(self):
        if self.node.proc.poll() is None:
            self.node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_every_answer_validates_against_the_served_document(self):
        x = Recorder(self.node)
        root = token(roles=["platform_admin"])
        T = "/v1/tenants/{tenantId}"

        # Operational routes.
        for path in ("/livez", "/readyz", "/metrics", "/openapi.json"):
            x("GET", path, path)
        x("GET", "/readyz", "/readyz?verbose")

        # Tenants.
        s, _, t = x("POST", "/v1/tenants", "/v1/tenants", {"slug": "oa-" + uuid.uuid4().hex[:8], "name": "A",
                                                            "plan": "pro"}, root)
        self.assertEqual(s, 201, t)
        s, _, other = x("POST", "/v1/tenants", "/v1/tenants", {"slug": "ob-" + uuid.uuid4().hex[:8], "name": "B"}, root)
        self.assertEqual(s, 201)
        tid, base = t["id"], "/v1/tenants/" + t["id"]
        roles = {r: token(tenant=tid, roles=[r], sub="sub-" + r) for r in ("owner", "admin", "member", "viewer")}
        outsider = token(tenant=other["id"], roles=["admin"])
        x("POST", "/v1/tenants", "/v1/tenants", {"slug": t["slug"], "name": "dup"}, root, label="duplicate slug")
        x("POST", "/v1/tenants", "/v1/tenants", {"slug": "x", "nope": 1}, root, label="unknown field")
        x("POST", "/v1/tenants", "/v1/tenants", raw=b"{", who=root, headers={"Content-Type": "application/json"})
        x("POST", "/v1/tenants", "/v1/tenants", raw=b"{}", who=root, headers={"Content-Type": "text/plain"})
        x("POST", "/v1/tenants", "/v1/tenants", raw=b"[" * 100 + b"]" * 100, who=root,
          headers={"Content-Type": "application/json"}, label="too deep")
        x("POST", "/v1/tenants", "/v1/tenants", {"slug": "x", "name": "y" * 70000}, root, label="too large")
        x("POST", "/v1/tenants", "/v1/tenants", {"slug": "nobody", "name": "N"}, label="no credential")
        x("POST", "/v1/tenants", "/v1/tenants", {"slug": "nobody", "name": "N"}, roles["owner"], label="tenant key")
        key = str(uuid.uuid4())
        body = {"slug": "oi-" + uuid.uuid4().hex[:8], "name": "Idem"}
        x("POST", "/v1/tenants", "/v1/tenants", body, root, headers={"Idempotency-Key": key})
        x("POST", "/v1/tenants", "/v1/tenants", body, root, headers={"Idempotency-Key": key}, label="replay")
        x("POST", "/v1/tenants", "/v1/tenants", {**body, "name": "other"}, root, headers={"Idempotency-Key": key})
        x("PUT", "/v1/tenants", "/v1/tenants", {}, root, label="405")
        x("GET", "/v1/tenants", "/v1/tenants", who=root)
        x("GET", "/v1/tenants", "/v1/tenants?limit=1&sort=-slug", who=root)
        x("GET", "/v1/tenants", "/v1/tenants?limit=9999", who=root)
        x("GET", "/v1/tenants", "/v1/tenants", who=roles["admin"])
        for r, tok in roles.items():
            x("GET", T, base, who=tok, label=r)
        x("GET", T, "/v1/tenants/" + other["id"], who=roles["admin"], label="another tenant")
        x("GET", T, "/v1/tenants/no-such-slug", who=root)
        s, h, _ = x("GET", T, base, who=root)
        x("GET", T, base, who=root, headers={"If-None-Match": h["etag"]})
        merge = {"Content-Type": "application/merge-patch+json"}
        x("PATCH", T, base, {"settings": {"displayName": "A", "primaryColor": "#112233"}}, roles["admin"],
          headers=merge)
        x("PATCH", T, base, {"name": "B"}, roles["admin"], headers={**merge, "If-Match": '"999"'})
        x("PATCH", T, base, {"id": "x"}, roles["admin"], headers=merge)
        x("PATCH", T, base, {"name": "B"}, roles["member"], headers=merge)
        x("PATCH", T, base, {"plan": "enterprise"}, roles["admin"], headers=merge)
        x("PATCH", T, base, {"plan": "free"}, root, headers=merge)
        x("GET", T + "/usage", base + "/usage", who=roles["viewer"])
        x("GET", T + "/usage", base + "/usage", who=roles["member"])

        # Users.
        U = T + "/users"
        s, _, ann = x("POST", U, base + "/users", {"email": "ann@example.com", "name": "Ann", "roles": ["owner"],
                                                   "attributes": {"team": "core", "n": 1}}, roles["owner"])
        self.assertEqual(s, 201, ann)
        s, _, bob = x("POST", U, base + "/users", {"email": "bob@example.com"}, roles["admin"])
        x("POST", U, base + "/users", {"email": "ann@example.com"}, roles["admin"], label="duplicate email")
        x("POST", U, base + "/users", {"email": "not an email"}, roles["admin"])
        x("POST", U, base + "/users", {"email": "v@example.com"}, roles["viewer"])
        x("POST", U, base + "/users", {"email": "v@example.com", "roles": ["owner"]}, roles["admin"], label="grant")
        x("GET", U, base + "/users", who=roles["member"])
        x("GET", U, base + "/users?sort=-email&limit=1&q=a&role=owner", who=roles["viewer"])
        x("GET", U, base + "/users?sort=nope", who=roles["viewer"])
        x("GET", U, base + "/users?cursor=garbage", who=roles["viewer"])
        UU = U + "/{userId}"
        s, h, _ = x("GET", UU, f"{base}/users/{ann['id']}", who=roles["member"])
        x("GET", UU, f"{base}/users/{ann['id']}", who=roles["member"], headers={"If-None-Match": h["etag"]})
        x("GET", UU, f"{base}/users/{uuid.uuid4()}", who=roles["member"])
        x("GET", UU, f"{base}/users/not-a-uuid", who=roles["member"])
        x("PATCH", UU, f"{base}/users/{bob['id']}", {"name": "Bob", "attributes": {"k": [1, 2]}}, roles["admin"],
          headers=merge)
        x("PATCH", UU, f"{base}/users/{bob['id']}", {"name": "Bob"}, roles["admin"], headers={**merge, "If-Match": '"1"'})
        x("PATCH", UU, f"{base}/users/{ann['id']}", {"roles": ["member"]}, roles["admin"], headers=merge, label="owner")
        x("PATCH", UU, f"{base}/users/{bob['id']}", {"status": "nope"}, roles["admin"], headers=merge)
        x("GET", UU + "/export", f"{base}/users/{bob['id']}/export", who=roles["admin"])
        x("DELETE", UU, f"{base}/users/{bob['id']}", who=roles["admin"])
        x("DELETE", UU, f"{base}/users/{bob['id']}?erase=true", who=roles["admin"])
        x("DELETE", UU, f"{base}/users/{uuid.uuid4()}?erase=true", who=roles["admin"])
        x("DELETE", UU, f"{base}/users/{ann['id']}?erase=maybe", who=roles["admin"])

        # Events.
        x("GET", "/v1/events", "/v1/events?after=0&limit=5", who=root)
        x("GET", "/v1/events", "/v1/events?after=x", who=root)
        x("GET", T + "/events", base + "/events?after=0", who=roles["viewer"])
        x("GET", T + "/events", base + "/events", who=outsider)

        # Webhooks (a name that does not resolve here: nothing is ever sent).
        W = T + "/webhooks"
        s, _, w = x("POST", W, base + "/webhooks", {"url": "https://hooks.example.com/c", "eventTypes": ["user.*"],
                                                   "description": "d"}, roles["admin"])
        self.assertEqual(s, 201, w)
        x("POST", W, base + "/webhooks", {"url": "http://127.0.0.1/x"}, roles["admin"], label="private target")
        x("POST", W, base + "/webhooks", {"url": "ftp://x"}, roles["admin"])
        x("GET", W, base + "/webhooks", who=roles["viewer"])
        x("GET", W + "/{webhookId}", f"{base}/webhooks/{w['id']}", who=roles["viewer"])
        x("GET", W + "/{webhookId}", f"{base}/webhooks/{uuid.uuid4()}", who=roles["viewer"])
        x("GET", W + "/{webhookId}", f"{base}/webhooks/nope", who=roles["viewer"])
        x("GET", W + "/{webhookId}/deliveries", f"{base}/webhooks/{w['id']}/deliveries", who=roles["viewer"])
        x("DELETE", W + "/{webhookId}", f"{base}/webhooks/{w['id']}", who=roles["admin"])

        # Plugins: the registry, the tenant's bindings, and a hook's rejection.
        P = "/v1/plugins"
        pname = "oa-" + uuid.uuid4().hex[:8]
        src = ("return { before_user_create = function(ctx, u) if u.email:sub(1, 3) == 'no-' then "
               "return nil, 'refused' end return u end }")
        pub = {"name": pname, "version": "1.0.0", "source": src, "hooks": ["before_user_create"],
               "configSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}}
        s, _, pv = x("POST", P, P, pub, root)
        self.assertEqual(s, 201, pv)
        x("POST", P, P, pub, root, label="immutable")
        x("POST", P, P, {**pub, "version": "1.0.1", "source": "return {"}, root, label="syntax error")
        x("POST", P, P, pub, roles["owner"], label="tenant key")
        x("GET", P, P, who=roles["admin"])
        x("GET", P, P, who=roles["member"])
        x("GET", P + "/{name}", f"{P}/{pname}", who=roles["owner"])
        x("GET", P + "/{name}", f"{P}/no-such-plugin", who=root)
        x("GET", P + "/{name}/versions", f"{P}/{pname}/versions", who=root)
        x("GET", P + "/{name}/versions/{version}", f"{P}/{pname}/versions/1.0.0", who=root)
        x("GET", P + "/{name}/versions/{version}", f"{P}/{pname}/versions/9.0.0", who=root)
        TP = T + "/plugins"
        s, _, bd = x("PUT", TP + "/{name}", f"{base}/plugins/{pname}", {"version": "1.0.0", "config": {"n": 1}},
                     roles["admin"])
        self.assertEqual(s, 201, bd)
        x("PUT", TP + "/{name}", f"{base}/plugins/{pname}", {"version": "1.0.0", "config": {"n": 2}}, roles["owner"])
        x("PUT", TP + "/{name}", f"{base}/plugins/{pname}", {"version": "1.0.0", "config": {"n": "x"}}, roles["admin"])
        x("PUT", TP + "/{name}", f"{base}/plugins/{pname}", {"version": "1.0.0"}, roles["member"])
        x("GET", TP, base + "/plugins", who=roles["viewer"])
        x("GET", TP + "/{name}", f"{base}/plugins/{pname}", who=roles["viewer"])
        x("POST", T + "/users", base + "/users", {"email": "no-one@example.com", "name": "N"}, roles["admin"],
          label="plugin-rejected")
        x("DELETE", TP + "/{name}", f"{base}/plugins/{pname}", who=roles["admin"])
        x("DELETE", TP + "/{name}", f"{base}/plugins/{pname}", who=roles["admin"], label="not enabled")
        x("GET", TP + "/{name}", f"{base}/plugins/{pname}", who=roles["viewer"], label="not enabled")
        XP = T + "/x/{name}/{path}"
        hname = "oa-http-" + uuid.uuid4().hex[:6]
        hsrc = ("return { http = function(ctx, req) if req.path == '/t' then return { body = 'text' } end "
                "if req.path == '/bad' then return { status = 7 } end "
                "return { status = 202, body = { path = req.path } } end }")
        x("POST", P, P, {"name": hname, "version": "1.0.0", "source": hsrc, "hooks": ["http"]}, root)
        x("GET", XP, f"{base}/x/{hname}/a/b", who=roles["viewer"], label="not enabled")
        x("PUT", TP + "/{name}", f"{base}/plugins/{hname}", {"version": "1.0.0"}, roles["admin"])
        x("GET", XP, f"{base}/x/{hname}/a/b", who=roles["viewer"])
        x("POST", XP, f"{base}/x/{hname}/a", {"k": 1}, roles["member"])
        x("PUT", XP, f"{base}/x/{hname}/t", {"k": 1}, roles["member"], label="text")
        x("PATCH", XP, f"{base}/x/{hname}/bad", {"k": 1}, roles["member"], label="a wrong answer")
        x("DELETE", XP, f"{base}/x/{hname}/a", who=roles["member"])
        x("DELETE", TP + "/{name}", f"{base}/plugins/{hname}", who=roles["admin"])
        # on_event: the cursor in the binding, and the dead letters of an event it fails on.
        ename = "oa-ev-" + uuid.uuid4().hex[:6]
        esrc = "return { on_event = function(ctx, ev) if ev.type == 'user.created' then error('no') end end }"
        x("POST", P, P, {"name": ename, "version": "1.0.0", "source": esrc, "hooks": ["on_event"]}, root)
        x("PUT", TP + "/{name}", f"{base}/plugins/{ename}", {"version": "1.0.0"}, roles["admin"])
        x("POST", T + "/users", base + "/users", {"email": "ev-" + uuid.uuid4().hex[:6] + "@example.com",
                                                  "name": "E"}, roles["admin"])
        DL = TP + "/{name}/dead-letters"
        deadline = time.time() + 20
        auth = {"Authorization": "Bearer " + roles["viewer"]}
        while time.time() < deadline and not self.node.json("GET", f"{base}/plugins/{ename}/dead-letters", None, auth,
                                                            auth=False)[2]["data"]:
            time.sleep(0.1)
        s, _, dl = x("GET", DL, f"{base}/plugins/{ename}/dead-letters", who=roles["viewer"])
        self.assertEqual(len(dl["data"]), 1, dl)
        x("GET", DL, f"{base}/plugins/{ename}/dead-letters?limit=500", who=roles["viewer"], label="bad limit")
        x("GET", TP + "/{name}", f"{base}/plugins/{ename}", who=roles["viewer"], label="on_event")

        # API keys.
        K = T + "/api-keys"
        s, _, k = x("POST", K, base + "/api-keys", {"name": "ci", "roles": ["viewer"]}, roles["admin"])
        self.assertEqual(s, 201, k)
        x("POST", K, base + "/api-keys", {"name": "ci", "roles": ["owner"]}, roles["admin"], label="grant")
        x("POST", K, base + "/api-keys", {"name": ""}, roles["admin"])
        x("GET", K, base + "/api-keys", who=roles["admin"])
        x("GET", K, base + "/api-keys", who=roles["viewer"])
        x("GET", U, base + "/users", who=k["key"], label="api key")
        x("DELETE", K + "/{keyId}", f"{base}/api-keys/{k['id']}", who=roles["admin"])
        x("DELETE", K + "/{keyId}", f"{base}/api-keys/{k['id']}", who=roles["admin"], label="again")
        x("DELETE", K + "/{keyId}", f"{base}/api-keys/zz", who=roles["admin"])

        # Audit log.
        x("GET", T + "/audit-log", base + "/audit-log?limit=5", who=roles["admin"])
        x("GET", T + "/audit-log", base + "/audit-log?cursor=zz", who=roles["admin"])
        x("GET", "/v1/audit-log", "/v1/audit-log?limit=5", who=root)
        x("GET", "/v1/audit-log", "/v1/audit-log", who=roles["owner"])

        # The introspection API (console, colonyctl).
        x("GET", "/v1/admin/nodes", "/v1/admin/nodes", who=root)
        x("GET", "/v1/admin/nodes", "/v1/admin/nodes", who=roles["owner"])
        x("GET", "/v1/admin/actors", "/v1/admin/actors?top=5", who=root)
        x("GET", "/v1/admin/actors", "/v1/admin/actors?top=0", who=root)
        x("GET", "/v1/admin/crashes", "/v1/admin/crashes", who=root)
        x("GET", "/v1/admin/crashes", "/v1/admin/crashes?limit=99", who=root)
        x("GET", "/v1/admin/stores", "/v1/admin/stores", who=root)
        x("GET", "/v1/admin/mailboxes", "/v1/admin/mailboxes?top=5", who=root)
        x("GET", "/v1/admin/mailboxes", "/v1/admin/mailboxes?top=0", who=root)
        x("GET", "/v1/admin/tenants/{tenantId}", f"/v1/admin/tenants/{tid}", who=root)
        x("GET", "/v1/admin/tenants/{tenantId}", f"/v1/admin/tenants/{uuid.uuid4()}", who=root)
        A = "/v1/admin/actors/{kind}/{actorId}"
        x("GET", A, f"/v1/admin/actors/tenant/{tid}", who=root)
        x("GET", A, f"/v1/admin/actors/user/{uuid.uuid4()}?tenantId={tid}", who=root)
        x("GET", A, f"/v1/admin/actors/user/{uuid.uuid4()}", who=root)
        # Operator actions: platform_admin alone may not take them.
        x("POST", A + "/passivate", f"/v1/admin/actors/tenant/{tid}/passivate", who=root)
        x("POST", "/v1/admin/nodes/{nodeName}/drain", "/v1/admin/nodes/node1/drain", who=root)

        # The console's session (its stream never ends: the browser test reads it).
        CS = "/console/session"
        x("GET", CS, CS, label="no session")
        x("POST", CS, CS, {"token": root})
        x("POST", CS, CS, {"token": ""}, label="empty")
        x("POST", CS, CS, {"token": "ck_nope"}, label="unknown")
        x("POST", CS, CS, {"token": roles["owner"]}, label="tenant credential")
        x("POST", CS, CS, {"token": root}, headers={"Origin": "https://evil.example"}, label="origin")
        x("DELETE", CS, CS)

        # Stripe.
        S = "/v1/billing/webhooks/stripe"
        ev = json.dumps({"id": "evt_" + uuid.uuid4().hex, "type": "customer.subscription.updated",
                         "data": {"object": {"customer": "cus_x", "metadata": {"tenant_id": tid},
                                             "status": "active", "items": {"data": []}}}}).encode()
        x("POST", S, S, raw=ev, headers=stripe_headers(ev))
        x("POST", S, S, raw=ev, headers={**stripe_headers(ev), "Stripe-Signature": "t=1,v1=00"})
        x("POST", S, S, raw=b"{}", headers=stripe_headers(b"{}"))

        # Lifecycle last (a suspended tenant refuses writes).
        x("POST", T + "/activate", base + "/activate", who=root)
        x("POST", T + "/activate", base + "/activate", who=root, label="again")
        x("POST", T + "/activate", base + "/activate", who=roles["owner"])
        x("POST", T + "/suspend", base + "/suspend", {"reason": "unpaid"}, root)
        x("POST", U, base + "/users", {"email": "late@example.com"}, roles["admin"], label="suspended")
        x("POST", T + "/cancel", base + "/cancel", who=roles["admin"])
        x("POST", T + "/cancel", base + "/cancel", who=roles["owner"])

        # Rate limit: a tenant on the tiny plan (1 request/s, burst 2).
        s, _, tiny = x("POST", "/v1/tenants", "/v1/tenants", {"slug": "ot-" + uuid.uuid4().hex[:8], "name": "T",
                                                               "plan": "tiny"}, root)
        tiny_admin = token(tenant=tiny["id"], roles=["admin"])
        for _ in range(4):
            x("GET", U, f"/v1/tenants/{tiny['id']}/users", who=tiny_admin)
        self.assertIn(429, [e["status"] for e in x.exchanges if e["route"] == U])

        # Limits the HTTP layer answers itself.
        x("GET", "/v1/tenants", "/v1/tenants?" + "a" * 9000, who=root, label="414")
        x("GET", "/v1/tenants", "/v1/tenants", who=root, headers={"X-Big": "a" * 20000}, label="431")

        statuses = sorted({e["status"] for e in x.exchanges})
        for code in (200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 412, 413, 414, 415, 422, 429, 431):
            self.assertIn(code, statuses)

        spec_path = os.path.join(self.dir, "openapi.json")
        with open(spec_path, "w") as f:
            f.write(self.node.request("GET", "/openapi.json", auth=False)[2].decode())
        exchanges = os.path.join(self.dir, "exchanges.jsonl")
        with open(exchanges, "w") as f:
            for e in x.exchanges:
                f.write(json.dumps(e) + "\n")
        out = subprocess.run(["node", CHECK, spec_path, exchanges], capture_output=True, text=True, timeout=120)
        print(out.stdout[-3000:], file=sys.stderr)
        self.assertEqual(out.returncode, 0, out.stdout[-20000:] + out.stderr[-3000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
