-- Outbound webhooks: a tenant's endpoints, and one delivery row per
-- (endpoint, event). Deliveries are durable: pending ones are resumed after a
-- restart; next_attempt_us is their retry timer.
CREATE TABLE webhook_endpoints (
  id           text PRIMARY KEY,
  tenant_id    text NOT NULL,
  url          text NOT NULL,
  event_types  text NOT NULL,            -- ",tenant.*,user.created," ("" = every event)
  secret       text NOT NULL,
  description  text NOT NULL DEFAULT '',
  created_us   INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_by_tenant ON webhook_endpoints (tenant_id, created_us);

CREATE TABLE webhook_deliveries (
  id               text PRIMARY KEY,
  endpoint_id      text NOT NULL,
  tenant_id        text NOT NULL,
  event_id         text NOT NULL,
  event_type       text NOT NULL,
  body             text NOT NULL,
  status           text NOT NULL,      -- pending | delivered | dead
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_us  INTEGER NOT NULL,
  last_status      integer NOT NULL DEFAULT 0,
  last_error       text NOT NULL DEFAULT '',
  created_us       INTEGER NOT NULL,
  updated_us       INTEGER NOT NULL,
  UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_us);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);

-- Read positions of outbox consumers inside the node (the webhook fan-out).
CREATE TABLE outbox_cursors (
  name      text PRIMARY KEY,
  position  INTEGER NOT NULL
);
