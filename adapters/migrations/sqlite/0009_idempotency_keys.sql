-- Idempotency-Key (docs/api.md): one row per (credential, route, path, key).
-- state: running (the first request is in progress), committed (its entity
-- change committed; written in the change's own transaction), done (answer
-- stored). The body is sealed with the node's secrets key.
CREATE TABLE idempotency_keys (
  scope        text PRIMARY KEY,
  fingerprint  text NOT NULL,
  state        text NOT NULL,
  started_us   INTEGER NOT NULL,
  expires_us   INTEGER NOT NULL,
  status       integer NOT NULL DEFAULT 0,
  headers      text NOT NULL DEFAULT '',
  body         text NOT NULL DEFAULT '',
  ref_kind     integer NOT NULL DEFAULT 0,
  ref_tenant   text NOT NULL DEFAULT '',
  ref_id       text NOT NULL DEFAULT ''
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_us);
