-- colony.kv (docs/plugins.md, "Host API"): each (tenant, plugin) has its own
-- keys; a value is JSON text. The quota counts key, value and 64 bytes a row
-- (octet lengths). Written only by the node owning the tenant's shard (the
-- fence is checked in the writing transaction).
CREATE TABLE plugin_kv (
  tenant_id   text COLLATE "C" NOT NULL,
  plugin      text COLLATE "C" NOT NULL,
  key         text COLLATE "C" NOT NULL,
  value       text NOT NULL,
  updated_us  bigint NOT NULL,
  PRIMARY KEY (tenant_id, plugin, key)
);
