-- The per-tenant event feed (GET /v1/tenants/{tid}/events) reads by tenant in
-- commit order.
CREATE INDEX outbox_by_tenant ON outbox (tenant_id, seq);
