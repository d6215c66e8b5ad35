-- colony.kv (docs/plugins.md, "Host API"): each (tenant, plugin) has its own
-- keys; a value is JSON text. The quota counts key, value and 64 bytes a row.
CREATE TABLE plugin_kv (
  tenant_id   text NOT NULL,
  plugin      text NOT NULL,
  key         text NOT NULL,
  value       text NOT NULL,
  updated_us  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, plugin, key)
) WITHOUT ROWID;
