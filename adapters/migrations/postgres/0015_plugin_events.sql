-- on_event (docs/plugins.md, "on_event"): per (tenant, plugin) its read
-- position in the tenant's outbox events and its retry state, and the events
-- it gave up on. The shard is the tenant's (runtime::cluster::shard_of):
-- each node pumps the cursors of the shards it owns.
CREATE TABLE plugin_cursors (
  tenant_id        text COLLATE "C" NOT NULL,
  plugin           text COLLATE "C" NOT NULL,
  position         bigint NOT NULL,
  paused           boolean NOT NULL DEFAULT false,
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_us  bigint NOT NULL DEFAULT 0,
  last_error       text NOT NULL DEFAULT '',
  updated_us       bigint NOT NULL,
  shard            integer NOT NULL,
  PRIMARY KEY (tenant_id, plugin)
);
CREATE INDEX plugin_cursors_due ON plugin_cursors (shard, next_attempt_us) WHERE NOT paused;
CREATE TABLE plugin_dead_letters (
  id          text COLLATE "C" PRIMARY KEY,
  tenant_id   text COLLATE "C" NOT NULL,
  plugin      text COLLATE "C" NOT NULL,
  position    bigint NOT NULL,
  event_id    text NOT NULL,
  event_type  text NOT NULL,
  event       bytea NOT NULL,
  error       text NOT NULL,
  attempts    integer NOT NULL,
  created_us  bigint NOT NULL
);
CREATE INDEX plugin_dead_letters_by_plugin ON plugin_dead_letters (tenant_id, plugin, id);
