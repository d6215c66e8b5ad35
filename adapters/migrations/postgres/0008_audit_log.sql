-- The audit log: append-only. position orders records in commit order.
CREATE TABLE audit_log (
  position    bigserial PRIMARY KEY,
  id          text NOT NULL UNIQUE,
  tenant_id   text NOT NULL,
  at_us       bigint NOT NULL,
  actor       text NOT NULL,
  action      text NOT NULL,
  target      text NOT NULL,
  request_id  text NOT NULL,
  client      text NOT NULL,
  outcome     text NOT NULL,
  status      integer NOT NULL,
  detail      text NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, position);
