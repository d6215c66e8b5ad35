#!/usr/bin/env python3
"""End-to-end authentication and authorization: bootstrap admin key, API keys,
JWTs over HTTP, and the route x role x tenant matrix of docs/security.md.

Tokens are signed here with Python's hmac (HS256), the way an issuer would.
Environment: see colony_testkit/env.py.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest
import uuid

from colony_testkit import AUDIENCE, ISSUER, SECRET, Node, jwt, store_spec, token

TENANT_ROLES = ["owner", "admin", "member", "viewer"]


ROOT = None  # a platform admin token, set in setUpClass


class BootstrapAndApiKeys(unittest.TestCase):
    """A node without JWT configuration: the bootstrap admin key and API keys."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="colony-auth-keys-")
        cls.node = Node(cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_bootstrap_key_file_is_private_and_never_logged(self):
        path = os.path.join(self.dir, "admin.key")
        if store_spec() == "sqlite:":  # a shared PostgreSQL database may have minted it for an earlier node
            self.assertTrue(os.path.exists(path))
        if os.path.exists(path):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            with open(path) as f:
                key = f.read().strip()
            self.assertRegex(key, r"^colony_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$")
            logs = self.node.logs()
            self.assertIn(path, logs)
            self.assertNotIn(key, logs)
            self.assertNotIn(key[-43:], logs)  # the secret part (base64url: it may hold "_" itself)
        # Usable as a bearer token for platform routes.
        status, _, _ = self.node.json("GET", "/v1/tenants")
        self.assertEqual(status, 200)

    def test_the_readme_curl_session_runs_with_the_bootstrap_key(self):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "curl-session.sh")
        env = dict(os.environ, COLONY_KEY=self.node.admin_key)
        r = subprocess.run(["bash", script, f"http://127.0.0.1:{self.node.port}"], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("tenant-suspended", r.stdout)

    def test_missing_and_malformed_credentials_get_401_with_a_bearer_challenge(self):
        status, hdrs, doc = self.node.json("GET", "/v1/tenants", auth=False)
        self.assertEqual(status, 401)
        self.assertEqual(hdrs["WWW-Authenticate"], 'Bearer realm="colony"')
        self.assertEqual(doc["type"], "https://colony.dev/problems/unauthorized")
        self.assertEqual(doc["requestId"], hdrs["X-Request-Id"])
        for value, error in (("Basic dXNlcjpwdw==", "invalid_request"), ("Bearer colony_nope", "invalid_token"),
                             ("Bearer " + "colony_" + "0" * 32 + "_" + "A" * 43, "invalid_token"),
                             ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "invalid_token")):
            status, hdrs, doc = self.node.json("GET", "/v1/tenants", headers={"Authorization": value})
            self.assertEqual(status, 401, value)
            self.assertIn(f'error="{error}"', hdrs["WWW-Authenticate"], value)
        # Open routes need nothing; the Stripe webhook has its own signature (off here: 503).
        for path in ("/livez", "/readyz", "/metrics", "/openapi.json"):
            self.assertEqual(self.node.request("GET", path, auth=False)[0], 200, path)
        self.assertEqual(self.node.request("POST", "/v1/billing/webhooks/stripe", raw=b"{}", auth=False,
                                           headers={"Content-Type": "application/json"})[0], 503)

    def test_api_key_lifecycle_shown_once_hashed_revoked_at_once_expiring(self):
        status, _, t = self.node.json("POST", "/v1/tenants", {"slug": "k-" + uuid.uuid4().hex[:10], "name": "Keys"})
        self.assertEqual(status, 201)
        base = f"/v1/tenants/{t['id']}"
        status, hdrs, created = self.node.json("POST", base + "/api-keys", {"name": "ci", "roles": ["admin"]})
        self.assertEqual(status, 201, created)
        key = created["key"]
        self.assertEqual(hdrs["Location"], f"{base}/api-keys/{created['id']}")
        self.assertEqual(created["status"], "active")
        # The key works, for its tenant only.
        status, _, _ = self.node.json("POST", base + "/users", {"email": "k@example.com"}, auth=key)
        self.assertEqual(status, 201)
        status, _, _ = self.node.json("GET", "/v1/tenants", auth=key)
        self.assertEqual(status, 403)
        # An admin key cannot mint an owner key.
        status, _, doc = self.node.json("POST", base + "/api-keys", {"roles": ["owner"]}, auth=key)
        self.assertEqual(status, 403, doc)
        # Listed without the key or its hash.
        status, _, page = self.node.json("GET", base + "/api-keys")
        self.assertEqual(status, 200)
        listed = [k for k in page["data"] if k["id"] == created["id"]][0]
        self.assertNotIn("key", listed)
        self.assertNotIn("hash", listed)
        self.assertNotIn(key, json.dumps(page))
        # Revoked: refused on the very next request.
        self.assertEqual(self.node.request("GET", base, auth=key)[0], 200)  # cached as valid
        self.assertEqual(self.node.request("DELETE", f"{base}/api-keys/{created['id']}")[0], 204)
        status, hdrs, doc = self.node.json("GET", base, auth=key)
        self.assertEqual(status, 401)
        self.assertIn("revoked", hdrs["WWW-Authenticate"])
        self.assertEqual(self.node.request("DELETE", f"{base}/api-keys/{created['id']}")[0], 404)
        status, _, page = self.node.json("GET", base + "/api-keys")
        self.assertEqual([k["status"] for k in page["data"] if k["id"] == created["id"]], ["revoked"])
        # Expiry.
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        status, _, short = self.node.json("POST", base + "/api-keys", {"roles": ["viewer"], "expiresAt": soon})
        self.assertEqual(status, 201, short)
        self.assertEqual(self.node.request("GET", base, auth=short["key"])[0], 200)
        time.sleep(2.2)
        status, hdrs, _ = self.node.json("GET", base, auth=short["key"])
        self.assertEqual(status, 401)
        self.assertIn("expired", hdrs["WWW-Authenticate"])
        # Bad bodies.
        for body in ({}, {"roles": []}, {"roles": ["root"]}, {"roles": ["viewer", "viewer"]},
                     {"roles": ["viewer"], "expiresAt": "2001-01-01T00:00:00Z"}, {"roles": ["viewer"], "x": 1}):
            status, _, doc = self.node.json("POST", base + "/api-keys", body)
            self.assertEqual(status, 400, body)
            self.assertIn("errors", doc)


class Jwt(unittest.TestCase):
    """A node that accepts HS256 tokens: JWT checks over HTTP and the role matrix."""

    @classmethod
    def setUpClass(cls):
        global ROOT
        cls.dir = tempfile.mkdtemp(prefix="colony-auth-jwt-")
        cls.node = Node(cls.dir, ["--auth-jwt-hs256-secret", SECRET, "--auth-issuer", ISSUER,
                                  "--auth-audience", AUDIENCE, "--auth.open-routes", "/livez,/readyz",
                                  "--webhooks.max-attempts", "1"])
        ROOT = token(roles=["platform_admin"], sub="root")
        cls.other = cls.fixture()

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def fixture(cls):
        """A tenant with a user, a webhook and an API key, made by the platform admin."""
        n = cls.node
        status, _, t = n.json("POST", "/v1/tenants", {"slug": "m-" + uuid.uuid4().hex[:12], "name": "M"}, auth=ROOT)
        assert status == 201, t
        tid = t["id"]
        _, _, u = n.json("POST", f"/v1/tenants/{tid}/users", {"email": f"{uuid.uuid4().hex[:8]}@example.com"}, auth=ROOT)
        _, _, w = n.json("POST", f"/v1/tenants/{tid}/webhooks", {"url": "http://127.0.0.1:9/hook"}, auth=ROOT)
        _, _, k = n.json("POST", f"/v1/tenants/{tid}/api-keys", {"roles": ["viewer"]}, auth=ROOT)
        return {"tenant": tid, "user": u["id"], "webhook": w["id"], "key": k["id"]}

    def test_no_bootstrap_key_when_tokens_are_configured(self):
        self.assertFalse(os.path.exists(os.path.join(self.dir, "admin.key")))

    def test_token_checks_over_http(self):
        n = self.node
        self.assertEqual(n.request("GET", "/v1/tenants", auth=ROOT)[0], 200)
        now = int(time.time())
        cases = {
            "expired": token(roles=["platform_admin"], exp=now - 120),
            "not valid yet": token(roles=["platform_admin"], nbf=now + 600),
            "another issuer": token(roles=["platform_admin"], iss="https://evil.example"),
            "another audience": token(roles=["platform_admin"], aud="other"),
            "does not verify": jwt({"roles": ["platform_admin"], "exp": now + 60, "iss": ISSUER, "aud": AUDIENCE},
                                   secret="not-the-secret-but-as-long-as-it-should-be"),
            "never none": jwt({"roles": ["platform_admin"], "exp": now + 60, "iss": ISSUER, "aud": AUDIENCE}, alg="none"),
            "RS256 is not accepted": jwt({"roles": ["platform_admin"], "exp": now + 60}, alg="RS256"),
        }
        for why, t in cases.items():
            status, hdrs, doc = n.json("GET", "/v1/tenants", auth=t)
            self.assertEqual(status, 401, why)
            self.assertIn('error="invalid_token"', hdrs["WWW-Authenticate"])
            self.assertNotIn(SECRET, json.dumps(doc) + hdrs["WWW-Authenticate"])
        # /metrics is not in auth.open-routes here: platform admins only.
        self.assertEqual(n.request("GET", "/metrics", auth=False)[0], 401)
        self.assertEqual(n.request("GET", "/metrics", auth=token(tenant=self.other["tenant"], roles=["owner"]))[0], 403)
        self.assertEqual(n.request("GET", "/metrics", auth=ROOT)[0], 200)
        self.assertEqual(n.request("GET", "/readyz", auth=False)[0], 200)

    def test_members_update_themselves_but_not_their_roles_and_admins_cannot_make_owners(self):
        n = self.node
        f = self.fixture()
        base = f"/v1/tenants/{f['tenant']}/users"
        me = token(tenant=f["tenant"], roles=["member"], sub=f["user"])
        merge = {"Content-Type": "application/merge-patch+json"}
        status, _, doc = n.json("PATCH", f"{base}/{f['user']}", {"name": "Me"}, headers=merge, auth=me)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["name"], "Me")
        status, _, doc = n.json("PATCH", f"{base}/{f['user']}", {"roles": ["owner"]}, headers=merge, auth=me)
        self.assertEqual(status, 403, doc)
        status, _, doc = n.json("GET", f"{base}/{f['user']}/export", auth=me)  # GDPR: its own data
        self.assertEqual((status, doc["user"]["name"]), (200, "Me"), doc)
        status, _, doc = n.json("PATCH", f"{base}/{f['user']}", {"status": "disabled"}, headers=merge, auth=me)
        self.assertEqual(status, 403, doc)
        _, _, other = n.json("POST", base, {"email": "o@example.com"}, auth=ROOT)
        status, _, _ = n.json("PATCH", f"{base}/{other['id']}", {"name": "X"}, headers=merge, auth=me)
        self.assertEqual(status, 403)
        admin = token(tenant=f["tenant"], roles=["admin"])
        status, _, _ = n.json("POST", base, {"email": "x@example.com", "roles": ["owner"]}, auth=admin)
        self.assertEqual(status, 403)
        status, _, _ = n.json("PATCH", f"{base}/{other['id']}", {"roles": ["owner"]}, headers=merge, auth=admin)
        self.assertEqual(status, 403)
        status, _, _ = n.json("PATCH", f"{base}/{other['id']}", {"roles": ["admin"]}, headers=merge, auth=admin)
        self.assertEqual(status, 200)
        owner = token(tenant=f["tenant"], roles=["owner"])
        status, _, _ = n.json("POST", base, {"email": "y@example.com", "roles": ["owner"]}, auth=owner)
        self.assertEqual(status, 201)

    def test_rate_limits_per_credential_and_tenant_with_ietf_headers(self):
        """Free plan: the tenant's bucket holds 40 and refills 20/s; one credential gets half (20, 10/s)."""
        n = self.node
        f = self.fixture()
        path = f"/v1/tenants/{f['tenant']}/users"
        first = token(tenant=f["tenant"], roles=["viewer"], sub="one")
        started = time.time()
        statuses, seen = [], None
        for _ in range(40):
            status, hdrs, doc = n.json("GET", path, auth=first)
            statuses.append(status)
            if status == 200 and seen is None:
                seen = hdrs
            if status == 429:
                break
        elapsed = time.time() - started
        self.assertEqual(seen["RateLimit-Policy"], '"tenant";q=40;w=2, "credential";q=20;w=2')
        self.assertRegex(seen["RateLimit"], r'^"tenant";r=39;t=1, "credential";r=19;t=1$')
        self.assertEqual(statuses[-1], 429, statuses)
        ok = statuses.count(200)
        self.assertGreaterEqual(ok, 20)
        self.assertLessEqual(ok, 20 + int(elapsed * 10) + 1)
        self.assertEqual(doc["type"], "https://colony.dev/problems/rate-limited")
        self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
        self.assertIn('"credential";r=0', hdrs["RateLimit"])
        self.assertIn("RateLimit-Policy", hdrs)
        # Another credential of the same tenant still has the tenant's remaining budget.
        second = token(tenant=f["tenant"], roles=["viewer"], sub="two")
        status, hdrs, _ = n.json("GET", path, auth=second)
        self.assertEqual(status, 200)
        self.assertIn('"credential";r=19', hdrs["RateLimit"])
        # Drain the tenant through several credentials: then everyone of the tenant waits.
        for i in range(60):
            status, hdrs, doc = n.json("GET", path, auth=token(tenant=f["tenant"], roles=["viewer"], sub=f"s{i}"))
            if status == 429:
                break
        self.assertEqual(status, 429)
        self.assertIn("tenant's", doc["detail"])
        self.assertIn('"tenant";r=0', hdrs["RateLimit"])
        # Other tenants and the platform are not affected; after Retry-After the tenant is served again.
        g = self.fixture()
        self.assertEqual(n.request("GET", f"/v1/tenants/{g['tenant']}/users",
                                   auth=token(tenant=g["tenant"], roles=["viewer"]))[0], 200)
        self.assertEqual(n.request("GET", path, auth=ROOT)[0], 200)
        time.sleep(int(hdrs["Retry-After"]))
        self.assertEqual(n.request("GET", path, auth=second)[0], 200)

    def audit(self, path, want, timeout=5):
        """Polls an audit-log page until `want(records)` holds (denials are written within 200 ms)."""
        deadline = time.time() + timeout
        while True:
            status, _, doc = self.node.json("GET", path, auth=ROOT)
            self.assertEqual(status, 200, doc)
            if want(doc["data"]) or time.time() > deadline:
                return doc

    def test_audit_log_records_changes_failures_denials_and_pages_with_filters(self):
        n = self.node
        f = self.fixture()
        tid = f["tenant"]
        owner = token(tenant=tid, roles=["owner"], sub="the-owner")
        viewer = token(tenant=tid, roles=["viewer"], sub="the-viewer")
        status, hdrs, user = n.json("POST", f"/v1/tenants/{tid}/users", {"email": "audited@example.com"}, auth=owner,
                                    headers={"X-Request-Id": "audit-req-1"})
        self.assertEqual(status, 201, user)
        self.assertEqual(n.json("POST", f"/v1/tenants/{tid}/users", {"email": "nope"}, auth=owner)[0], 400)
        self.assertEqual(n.json("DELETE", f"/v1/tenants/{tid}/users/{user['id']}", auth=viewer)[0], 403)
        self.assertEqual(n.json("GET", f"/v1/tenants/{self.other['tenant']}/users", auth=owner)[0], 404)
        self.assertEqual(n.request("GET", f"/v1/tenants/{tid}", auth=False)[0], 401)
        base = f"/v1/tenants/{tid}/audit-log"
        # Every record written (the trail flushes in batches): the refusal and both denials.
        doc = self.audit(base, lambda rs: any(r["action"] == "request.refused" for r in rs) and
                         sum(r["action"] == "access.denied" for r in rs) >= 2)
        by_action = {}
        for r in doc["data"]:
            by_action.setdefault(r["action"], []).append(r)
        created = [r for r in by_action["user.created"] if r["target"] == "user:" + user["id"]]
        self.assertEqual(len(created), 1, by_action)
        self.assertEqual(created[0]["actor"], f"jwt:{ISSUER}#the-owner")
        self.assertEqual(created[0]["requestId"], "audit-req-1")
        self.assertEqual(created[0]["client"], "127.0.0.1")
        self.assertEqual(created[0]["outcome"], "success")
        refused = by_action["request.refused"][0]
        self.assertEqual((refused["status"], refused["outcome"]), (400, "failure"))
        self.assertIn("email", refused["detail"])
        denied = by_action["access.denied"]
        self.assertEqual({(r["actor"], r["status"]) for r in denied},
                         {(f"jwt:{ISSUER}#the-viewer", 403), (f"jwt:{ISSUER}#the-owner", 404)})
        # The other tenant's log does not show this tenant's probing or changes.
        other = self.audit(f"/v1/tenants/{self.other['tenant']}/audit-log", lambda rs: True)
        self.assertFalse([r for r in other["data"] if "the-owner" in r["actor"]])
        # Authentication failures are platform-level records.
        failed = self.audit("/v1/audit-log?action=auth.failed",
                            lambda rs: any(r["target"] == f"GET /v1/tenants/{tid}" for r in rs))
        self.assertTrue(any(r["target"] == f"GET /v1/tenants/{tid}" and r["status"] == 401 for r in failed["data"]))
        # Filters and cursor pages.
        only = n.json("GET", f"{base}?action=user.created", auth=owner)[2]["data"]
        self.assertTrue(only and all(r["action"] == "user.created" for r in only))
        self.assertEqual(n.json("GET", f"{base}?actor=nobody", auth=owner)[2]["data"], [])
        future = n.json("GET", f"{base}?from=2999-01-01T00:00:00Z", auth=owner)[2]["data"]
        self.assertEqual(future, [])
        seen, cursor = [], None
        while True:
            status, _, page = n.json("GET", base + "?limit=2" + (f"&cursor={cursor}" if cursor else ""), auth=owner)
            self.assertEqual(status, 200)
            seen += [r["id"] for r in page["data"]]
            cursor = page["nextCursor"]
            if not cursor:
                break
        everything = n.json("GET", base + "?limit=500", auth=owner)[2]["data"]
        self.assertEqual(seen, [r["id"] for r in everything])
        self.assertEqual(n.json("GET", base + "?cursor=bogus", auth=owner)[0], 400)
        # Nothing updates or deletes audit records.
        for method in ("PATCH", "DELETE", "PUT"):
            self.assertEqual(n.request(method, base, auth=ROOT)[0], 405)

    # (method, path template, body, permission) for every route that needs credentials.
    ROUTES = [
        ("GET", "/metrics", None, "platform"),
        ("GET", "/openapi.json", None, "platform"),
        ("POST", "/v1/tenants", "tenant", "platform"),
        ("GET", "/v1/tenants", None, "platform"),
        ("GET", "/v1/events", None, "platform"),
        ("GET", "/v1/tenants/{t}", None, "tenant_read"),
        ("PATCH", "/v1/tenants/{t}", {"settings": {"displayName": "X"}}, "manage"),
        ("POST", "/v1/tenants/{t}/activate", None, "platform"),
        ("POST", "/v1/tenants/{t}/suspend", None, "platform"),
        ("POST", "/v1/tenants/{t}/cancel", None, "own"),
        ("GET", "/v1/tenants/{t}/usage", None, "tenant_inspect"),
        ("POST", "/v1/tenants/{t}/users", "user", "manage"),
        ("GET", "/v1/tenants/{t}/users", None, "users_read"),
        ("GET", "/v1/tenants/{t}/users/{u}", None, "users_read"),
        ("PATCH", "/v1/tenants/{t}/users/{u}", {"name": "N"}, "self_write"),
        ("DELETE", "/v1/tenants/{t}/users/{u}", None, "manage"),
        ("POST", "/v1/tenants/{t}/webhooks", {"url": "http://127.0.0.1:9/x"}, "manage"),
        ("GET", "/v1/tenants/{t}/webhooks", None, "tenant_inspect"),
        ("GET", "/v1/tenants/{t}/webhooks/{w}", None, "tenant_inspect"),
        ("DELETE", "/v1/tenants/{t}/webhooks/{w}", None, "manage"),
        ("GET", "/v1/tenants/{t}/webhooks/{w}/deliveries", None, "tenant_inspect"),
        ("GET", "/v1/tenants/{t}/events", None, "tenant_inspect"),
        ("POST", "/v1/tenants/{t}/api-keys", {"roles": ["viewer"]}, "manage"),
        ("GET", "/v1/tenants/{t}/api-keys", None, "manage"),
        ("DELETE", "/v1/tenants/{t}/api-keys/{k}", None, "manage"),
        ("GET", "/v1/tenants/{t}/audit-log", None, "manage"),
        ("GET", "/v1/tenants/{t}/users/{u}/export", None, "self_write"),
        ("GET", "/v1/audit-log", None, "platform"),
    ]
    ALLOWED = {  # tenant roles allowed per permission, in their own tenant (platform_admin: everything)
        "platform": set(), "tenant_read": {"owner", "admin", "member", "viewer"},
        "tenant_inspect": {"owner", "admin", "viewer"}, "users_read": {"owner", "admin", "member", "viewer"},
        "manage": {"owner", "admin"}, "own": {"owner"}, "self_write": {"owner", "admin"},  # member: itself only
    }

    def call(self, method, template, body, fx, auth):
        path = (template.replace("{t}", fx["tenant"]).replace("{u}", fx["user"]).replace("{w}", fx["webhook"])
                .replace("{k}", fx["key"]))
        if body == "tenant":
            body = {"slug": "n-" + uuid.uuid4().hex[:12], "name": "N"}
        elif body == "user":
            body = {"email": uuid.uuid4().hex[:10] + "@example.com"}
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
        return self.node.json(method, path, body, headers=headers, auth=auth)

    def test_every_route_by_every_role_in_own_and_other_tenant(self):
        """The full matrix of docs/security.md: allowed -> 2xx, own tenant without the role -> 403,
        another tenant's resource -> 404 for every role, exactly as for a tenant that does not exist."""
        checked = 0
        for method, template, body, perm in self.ROUTES:
            for role in ["platform_admin"] + TENANT_ROLES + ["none"]:
                for where in ("own", "other"):
                    fx = self.fixture() if where == "own" or role == "platform_admin" else self.other
                    own_tenant = fx["tenant"] if where == "own" else str(uuid.uuid4())
                    if role == "platform_admin":
                        auth = ROOT
                    else:
                        auth = token(tenant=own_tenant, roles=[] if role == "none" else [role])
                    status, _, doc = self.call(method, template, body, fx, auth)
                    label = f"{method} {template} as {role} on {where} tenant: {status} {doc}"
                    if role == "platform_admin" or (where == "own" and role in self.ALLOWED[perm]):
                        self.assertTrue(200 <= status < 300, label)
                    elif perm == "platform" or where == "own":
                        self.assertEqual(status, 403, label)
                        self.assertEqual(doc["type"], "https://colony.dev/problems/forbidden", label)
                    else:
                        self.assertEqual(status, 404, label)
                        self.assertEqual(doc["detail"], f"no tenant with id {fx['tenant']}", label)
                    checked += 1
        self.assertEqual(checked, len(self.ROUTES) * 6 * 2)

    def test_other_tenant_by_slug_is_indistinguishable_from_a_missing_one(self):
        n = self.node
        status, _, t = n.json("POST", "/v1/tenants", {"slug": "hidden-" + uuid.uuid4().hex[:8], "name": "H"}, auth=ROOT)
        mine = self.fixture()
        me = token(tenant=mine["tenant"], roles=["owner"])
        hidden = n.json("GET", f"/v1/tenants/{t['slug']}/users", auth=me)
        missing = n.json("GET", "/v1/tenants/no-such-tenant-xyz/users", auth=me)
        self.assertEqual((hidden[0], missing[0]), (404, 404))
        self.assertEqual(re.sub(r"'[^']*'", "'…'", hidden[2]["detail"]), re.sub(r"'[^']*'", "'…'", missing[2]["detail"]))


class Quota(unittest.TestCase):
    """apiCallsPerMonth: metered at the edge, written in batches, enforced, kept across a restart."""

    PLANS = """[colony.plans]
free = { max-users = 5, requests-per-second = 100, burst = 100 }
tiny = { api-calls-per-month = 5, requests-per-second = 100, burst = 100 }
"""

    def start(self, flush="200ms"):
        return Node(self.dir, ["--config", self.conf, "--auth-jwt-hs256-secret", SECRET, "--auth-issuer", ISSUER,
                               "--auth-audience", AUDIENCE, "--quota.flush-interval", flush])

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="colony-auth-quota-")
        self.conf = os.path.join(self.dir, "colony.conf")
        with open(self.conf, "w") as f:
            f.write(self.PLANS)
        self.node = self.start()

    def tearDown(self):
        if self.node.proc.poll() is None:
            self.node.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_calls_over_the_monthly_quota_get_429_quota_exceeded_also_after_a_restart(self):
        root = token(roles=["platform_admin"])
        tenants = []
        for _ in range(2):
            status, _, t = self.node.json("POST", "/v1/tenants", {"slug": "q-" + uuid.uuid4().hex[:10], "name": "Q",
                                                                  "plan": "tiny"}, auth=root)
            self.assertEqual(status, 201, t)
            tenants.append(t["id"])
        tid = tenants[0]
        owner = token(tenant=tid, roles=["owner"])
        for i in range(5):
            self.assertEqual(self.node.request("GET", f"/v1/tenants/{tid}", auth=owner)[0], 200, i)
        status, hdrs, doc = self.node.json("GET", f"/v1/tenants/{tid}", auth=owner)
        self.assertEqual(status, 429)
        self.assertEqual(doc["type"], "https://colony.dev/problems/quota-exceeded")
        self.assertEqual(doc["limit"], 5)
        self.assertGreater(int(hdrs["Retry-After"]), 0)
        self.assertLessEqual(int(hdrs["Retry-After"]), 31 * 24 * 3600)
        # The operator is not metered and sees the count; another tenant is not affected.
        status, _, usage = self.node.json("GET", f"/v1/tenants/{tid}/usage", auth=root)
        self.assertEqual((status, usage["usage"]["apiCallsThisMonth"]), (200, 5))
        other = token(tenant=tenants[1], roles=["viewer"])
        self.assertEqual(self.node.request("GET", f"/v1/tenants/{tenants[1]}", auth=other)[0], 200)
        # Counted in memory, written in batches: even a node killed without a chance to flush
        # has written what it counted up to its last flush interval.
        time.sleep(0.6)
        self.node.proc.kill()
        self.node.proc.wait()
        self.node.log.close()
        self.node = self.start(flush="10min")
        self.assertEqual(self.node.request("GET", f"/v1/tenants/{tid}", auth=owner)[0], 429)
        # With a long interval, what is still in memory is written at a clean shutdown.
        self.assertEqual(self.node.request("GET", f"/v1/tenants/{tenants[1]}", auth=other)[0], 200)
        code, _ = self.node.stop()
        self.assertEqual(code, 0)
        self.node = self.start()
        status, _, usage = self.node.json("GET", f"/v1/tenants/{tenants[1]}/usage", auth=root)
        self.assertEqual(usage["usage"]["apiCallsThisMonth"], 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
