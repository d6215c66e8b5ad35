-- Durable timers (trial expiry, payment grace periods, ...). A timer is
-- written in the same transaction as the change that sets it; the timer
-- service fires due ones (also those that fell due while the node was down).
CREATE TABLE timers (
  id         text PRIMARY KEY,          -- e.g. trial:<tenantId>; re-setting replaces it
  kind       text NOT NULL,
  tenant_id  text NOT NULL,
  target_id  text NOT NULL,
  due_us     INTEGER NOT NULL,
  attempts   integer NOT NULL DEFAULT 0,
  payload    text NOT NULL DEFAULT ''
);
CREATE INDEX timers_due ON timers (due_us);
