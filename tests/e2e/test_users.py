#!/usr/bin/env python3
"""End-to-end tests of users: CRUD, seat limits, uniqueness, paging, the JSON of
reads and writes, on one node of the store under test
(colony_testkit.api_case).

Environment: COLONYD, COLONY_TEST_STORE (sqlite|postgres), COLONY_TEST_PG_DSN_FILE.
"""
import json
import unittest
import uuid

from colony_testkit import NodeCase


class Users(NodeCase):
    def test_user_crud_limits_and_uniqueness(self):
        n = self.node
        t = self.tenant(plan="free")
        base = f"/v1/tenants/{t['id']}/users"
        status, hdrs, ann = n.json("POST", base, {"email": "Ann@Example.com", "name": "Ann", "roles": ["owner"], "attributes": {"team": "core"}})
        self.assertEqual(status, 201, ann)
        self.assertEqual(hdrs["Location"], f"{base}/{ann['id']}")
        self.assertProblem(n.json("POST", base, {"email": "ann@EXAMPLE.com"}), 409, "conflict")
        other = self.tenant()
        self.assertEqual(n.json("POST", f"/v1/tenants/{other['id']}/users", {"email": "ann@example.com"})[0], 201)

        status, hdrs, p = n.json("PATCH", f"{base}/{ann['id']}", {"attributes": {"team": None, "tz": "UTC"}, "status": "disabled"},
                                 {"If-Match": '"1"'})
        self.assertEqual(status, 200, p)
        self.assertEqual(p["attributes"], {"tz": "UTC"})
        self.assertEqual(p["status"], "disabled")
        self.assertEqual(n.json("GET", f"{base}/{ann['id']}")[2]["version"], 2)
        self.assertProblem(n.json("GET", f"/v1/tenants/{other['id']}/users/{ann['id']}"), 404)

        for i in range(4):
            self.assertEqual(n.json("POST", base, {"email": f"u{i}@example.com"})[0], 201)
        doc = self.assertProblem(n.json("POST", base, {"email": "six@example.com"}), 403, "limit-exceeded")
        self.assertEqual((doc["limit"], doc["current"]), (5, 5))
        self.assertEqual(n.json("PATCH", f"/v1/tenants/{t['id']}", {"plan": "starter"})[0], 200)
        self.assertEqual(n.request("DELETE", f"{base}/{ann['id']}")[0], 204)
        self.assertProblem(n.json("GET", f"{base}/{ann['id']}"), 404)
        self.assertProblem(n.json("DELETE", f"{base}/{ann['id']}"), 404)
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}/usage")[2]["usage"]["users"], 4)

    def test_paging_through_1000_users_while_adding(self):
        n = self.node
        t = self.tenant(plan="enterprise")
        base = f"/v1/tenants/{t['id']}/users"
        for i in range(1000):
            status, _, u = n.json("POST", base, {"email": f"user{i:04d}@example.com", "name": f"User {i:04d}",
                                                 "roles": ["admin"] if i % 10 == 0 else ["member"]})
            self.assertEqual(status, 201, u)
        seen, cursor, pages = [], None, 0
        while True:
            status, _, page = n.json("GET", base + "?sort=email&limit=100" + (f"&cursor={cursor}" if cursor else ""))
            self.assertEqual(status, 200, page)
            seen += [u["email"] for u in page["data"]]
            pages += 1
            if pages == 3:  # users added mid-way sort before and after the cursor
                n.json("POST", base, {"email": "aaa-early@example.com"})
                n.json("POST", base, {"email": "zzz-late@example.com"})
            cursor = page["nextCursor"]
            if not cursor:
                break
        self.assertEqual(len(seen), 1001)  # 1000 + the late one; the early one sorts before the cursor
        self.assertEqual(len(set(seen)), 1001)
        self.assertEqual(seen, sorted(seen))
        self.assertEqual(n.json("GET", f"/v1/tenants/{t['id']}/usage")[2]["usage"]["users"], 1002)
        admins = n.json("GET", base + "?role=admin&limit=500")[2]["data"]
        self.assertEqual(len(admins), 100)
        found = n.json("GET", base + "?q=USER%200999")[2]["data"]
        self.assertEqual([u["email"] for u in found], ["user0999@example.com"])
        desc = n.json("GET", base + "?sort=-createdAt&limit=2")[2]["data"]
        self.assertEqual(desc[0]["email"], "zzz-late@example.com")

    def test_a_read_renders_the_same_json_as_the_write_with_sorted_map_keys(self):
        status, _, t = self.node.json("POST", "/v1/tenants", {"slug": "js-" + uuid.uuid4().hex[:8], "name": "J",
                                                              "plan": "pro"})
        self.assertEqual(status, 201)
        body = {"email": "json@example.com", "name": "Zoë \"Q\" O'Neil", "roles": ["admin", "member"],
                "attributes": {"zz": 0, "a": 1, "b": {"c": [True, None]}, "m": "x"}}
        status, _, created_raw = self.node.request("POST", f"/v1/tenants/{t['id']}/users", body)
        self.assertEqual(status, 201, created_raw)
        uid = json.loads(created_raw)["id"]
        status, _, read_raw = self.node.request("GET", f"/v1/tenants/{t['id']}/users/{uid}")
        self.assertEqual(status, 200)
        self.assertEqual(read_raw, created_raw)  # byte for byte
        self.assertEqual(list(json.loads(read_raw)["attributes"]), ["a", "b", "m", "zz"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
