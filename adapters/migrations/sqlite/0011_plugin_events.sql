-- on_event (docs/plugins.md, "on_event"): per (tenant, plugin) its read
-- position in the tenant's outbox events and its retry state, and the events
-- it gave up on. One node owns every shard here, so no shard column.
CREATE TABLE plugin_cursors (
  tenant_id        text NOT NULL,
  plugin           text NOT NULL,
  position         INTEGER NOT NULL,
  paused           INTEGER NOT NULL DEFAULT 0,
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_us  INTEGER NOT NULL DEFAULT 0,
  last_error       text NOT NULL DEFAULT '',
  updated_us       INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, plugin)
);
CREATE TABLE plugin_dead_letters (
  id          text PRIMARY KEY,
  tenant_id   text NOT NULL,
  plugin      text NOT NULL,
  position    INTEGER NOT NULL,
  event_id    text NOT NULL,
  event_type  text NOT NULL,
  event       BLOB NOT NULL,
  error       text NOT NULL,
  attempts    INTEGER NOT NULL,
  created_us  INTEGER NOT NULL
);
CREATE INDEX plugin_dead_letters_by_plugin ON plugin_dead_letters (tenant_id, plugin, id);
