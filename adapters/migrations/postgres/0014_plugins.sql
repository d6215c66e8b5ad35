-- The plugin registry (docs/plugins.md): published versions, never updated.
-- state: the colony.v1.PluginVersion, its source included.
CREATE TABLE plugin_versions (
  name          text COLLATE "C" NOT NULL,
  version       text COLLATE "C" NOT NULL,
  published_us  bigint NOT NULL,
  state         bytea NOT NULL,
  PRIMARY KEY (name, version)
);
