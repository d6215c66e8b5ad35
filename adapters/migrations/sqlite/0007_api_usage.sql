-- API calls metered at the HTTP edge, per tenant and calendar month (UTC,
-- "2026-11"). Nodes add their counts in batches, never one write per request.
CREATE TABLE api_usage (
  tenant_id  text NOT NULL,
  month      text NOT NULL,
  calls      INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, month)
);
