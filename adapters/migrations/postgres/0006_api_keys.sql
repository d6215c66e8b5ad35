-- API keys: the SHA-256 of each key, never the key itself. A key without a
-- tenant (tenant_id '') is a platform key. Revoked keys stay as a record.
CREATE TABLE api_keys (
  id          text PRIMARY KEY,
  tenant_id   text NOT NULL,
  name        text NOT NULL DEFAULT '',
  roles       text NOT NULL,            -- ",admin,viewer,"
  hash        text NOT NULL,
  created_by  text NOT NULL,
  created_us  bigint NOT NULL,
  expires_us  bigint NOT NULL DEFAULT 0,    -- 0: never
  revoked_us  bigint NOT NULL DEFAULT 0     -- 0: live
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_us);
