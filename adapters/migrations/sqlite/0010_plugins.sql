-- The plugin registry (docs/plugins.md): published versions, never updated.
-- state: the colony.v1.PluginVersion, its source included.
CREATE TABLE plugin_versions (
  name          text NOT NULL,
  version       text NOT NULL,
  published_us  INTEGER NOT NULL,
  state         BLOB NOT NULL,
  PRIMARY KEY (name, version)
);
