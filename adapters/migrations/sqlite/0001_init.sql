-- Tenants, users and the transactional outbox.
CREATE TABLE tenants (
  id          TEXT PRIMARY KEY,
  slug        TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  plan        TEXT NOT NULL,
  status      TEXT NOT NULL,
  created_us  INTEGER NOT NULL,
  updated_us  INTEGER NOT NULL,
  version     INTEGER NOT NULL,
  user_count  INTEGER NOT NULL DEFAULT 0,
  state       BLOB NOT NULL
);
CREATE INDEX tenants_by_created ON tenants (created_us, id);
CREATE INDEX tenants_by_name ON tenants (name, id);

CREATE TABLE users (
  tenant_id   TEXT NOT NULL REFERENCES tenants (id),
  id          TEXT NOT NULL,
  email_lc    TEXT NOT NULL,
  name        TEXT NOT NULL,
  status      TEXT NOT NULL,
  roles       TEXT NOT NULL,
  created_us  INTEGER NOT NULL,
  updated_us  INTEGER NOT NULL,
  version     INTEGER NOT NULL,
  state       BLOB NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, email_lc)
);
CREATE INDEX users_by_created ON users (tenant_id, created_us, id);
CREATE INDEX users_by_name ON users (tenant_id, name, id);

CREATE TABLE outbox (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id          TEXT NOT NULL UNIQUE,
  type              TEXT NOT NULL,
  tenant_id         TEXT NOT NULL,
  aggregate_kind    TEXT NOT NULL,
  aggregate_id      TEXT NOT NULL,
  aggregate_version INTEGER NOT NULL,
  created_us        INTEGER NOT NULL,
  payload           BLOB NOT NULL,
  published_us      INTEGER
);
CREATE INDEX outbox_unpublished ON outbox (published_us, seq);
