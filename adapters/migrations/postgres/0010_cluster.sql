-- Cluster membership and shard ownership (docs/clustering.md). Unused on a
-- single node. The Orleans model: one version row per cluster, the CAS
-- point of every membership change; one row per node incarnation.
CREATE TABLE cluster_version (
  cluster_id  text PRIMARY KEY,
  version     bigint      NOT NULL DEFAULT 0,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cluster_member (
  cluster_id    text        NOT NULL REFERENCES cluster_version (cluster_id),
  incarnation   uuid        NOT NULL,          -- random per process start: the fencing identity
  node_name     text        NOT NULL,          -- stable logical name: the placement key
  generation    bigint      NOT NULL,          -- start time (ms); a newer generation of a name wins
  address       text        NOT NULL,          -- cluster address host:port
  http_address  text        NOT NULL,
  caf_node_id   text        NOT NULL,          -- diagnostics only (CAF 0.17 node ids can repeat)
  status        smallint    NOT NULL,          -- 1 joining, 2 active, 3 draining, 4 dead
  suspect_times jsonb       NOT NULL DEFAULT '[]', -- [{"by": incarnation, "at": epoch ms}]
  start_time    timestamptz NOT NULL DEFAULT now(),
  lease_until   timestamptz NOT NULL,          -- always from the database clock
  renewed_at    timestamptz NOT NULL,
  dead_at       timestamptz,
  dead_reason   text,
  PRIMARY KEY (cluster_id, incarnation),
  CHECK (status BETWEEN 1 AND 4)
);
-- At most one live incarnation per node name, enforced by the database.
CREATE UNIQUE INDEX cluster_member_one_live ON cluster_member (cluster_id, node_name) WHERE status < 4;

-- A fixed shard space of 4096; shard = colony's hash of the tenant id.
CREATE TABLE shard_owner (
  cluster_id  text        NOT NULL,
  shard_id    int         NOT NULL CHECK (shard_id BETWEEN 0 AND 4095),
  owner       uuid,                            -- incarnation; NULL: unowned
  epoch       bigint      NOT NULL DEFAULT 0,  -- fencing token: +1 on every owner change
  changed_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (cluster_id, shard_id)
);
CREATE INDEX shard_owner_by_owner ON shard_owner (cluster_id, owner);
