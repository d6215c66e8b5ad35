-- Tenants, users and the transactional outbox. Text columns that are sorted
-- use the "C" collation so both stores page in the same (byte) order.
CREATE TABLE tenants (
  id          text PRIMARY KEY,
  slug        text COLLATE "C" NOT NULL UNIQUE,
  name        text COLLATE "C" NOT NULL,
  plan        text NOT NULL,
  status      text NOT NULL,
  created_us  bigint NOT NULL,
  updated_us  bigint NOT NULL,
  version     integer NOT NULL,
  user_count  integer NOT NULL DEFAULT 0,
  state       bytea NOT NULL
);
CREATE INDEX tenants_by_created ON tenants (created_us, id);
CREATE INDEX tenants_by_name ON tenants (name, id);

CREATE TABLE users (
  tenant_id   text NOT NULL REFERENCES tenants (id),
  id          text COLLATE "C" NOT NULL,
  email_lc    text COLLATE "C" NOT NULL,
  name        text COLLATE "C" NOT NULL,
  status      text NOT NULL,
  roles       text NOT NULL,
  created_us  bigint NOT NULL,
  updated_us  bigint NOT NULL,
  version     integer NOT NULL,
  state       bytea NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, email_lc)
);
CREATE INDEX users_by_created ON users (tenant_id, created_us, id);
CREATE INDEX users_by_name ON users (tenant_id, name, id);

CREATE TABLE outbox (
  seq               bigserial PRIMARY KEY,
  event_id          text NOT NULL UNIQUE,
  type              text NOT NULL,
  tenant_id         text NOT NULL,
  aggregate_kind    text NOT NULL,
  aggregate_id      text NOT NULL,
  aggregate_version integer NOT NULL,
  created_us        bigint NOT NULL,
  payload           bytea NOT NULL,
  published_us      bigint
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_us IS NULL;
