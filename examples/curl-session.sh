#!/usr/bin/env bash
# The README's curl session. Usage: examples/curl-session.sh [http://127.0.0.1:8080]
set -euo pipefail
# The bearer key: COLONY_KEY, else the bootstrap admin key of a node started here.
base=${1:-http://127.0.0.1:8080}
key=${COLONY_KEY:-$(cat "${COLONY_DATA_DIR:-var}/admin.key")}
slug=acme-$RANDOM
json=(-H 'Content-Type: application/json' -H "Authorization: Bearer $key")
auth=(-H "Authorization: Bearer $key")
curl -fsS -X POST "$base/v1/tenants" "${json[@]}" -d "{\"slug\":\"$slug\",\"name\":\"Acme Inc\",\"plan\":\"starter\"}"; echo
curl -fsS "${auth[@]}" "$base/v1/tenants/$slug"; echo
curl -fsS -X POST "$base/v1/tenants/$slug/users" "${json[@]}" -d '{"email":"ann@acme.example","name":"Ann","roles":["owner"]}'; echo
curl -fsS -X POST "$base/v1/tenants/$slug/users" "${json[@]}" -d '{"email":"bob@acme.example","name":"Bob","attributes":{"team":"core"}}'; echo
curl -fsS "${auth[@]}" "$base/v1/tenants/$slug/users?sort=-email&limit=1"; echo
curl -fsS "${auth[@]}" -X PATCH "$base/v1/tenants/$slug" -H 'Content-Type: application/merge-patch+json' -H 'If-Match: "1"' \
  -d '{"settings":{"displayName":"ACME","primaryColor":"#0055ff"}}'; echo
curl -fsS "${auth[@]}" -X POST "$base/v1/tenants/$slug/activate"; echo
curl -fsS -X POST "$base/v1/tenants/$slug/suspend" "${json[@]}" -d '{"reason":"unpaid"}'; echo
curl -sS -X POST "$base/v1/tenants/$slug/users" "${json[@]}" -d '{"email":"eve@acme.example"}'; echo
curl -fsS "${auth[@]}" "$base/v1/tenants/$slug/usage"; echo
curl -fsS "${auth[@]}" "$base/v1/tenants/$slug/events?after=0"; echo
