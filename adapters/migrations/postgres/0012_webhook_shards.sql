-- Webhook deliveries per owned shard (docs/clustering.md, "Webhooks"): each
-- node sends the due deliveries of the shards it owns. The shard is the
-- delivery's tenant's (runtime::cluster::shard_of), written by the fan-out.
-- Rows written before this migration have none: the node that holds the
-- "webhooks" chore sends those, as every delivery was sent before.
ALTER TABLE webhook_deliveries ADD COLUMN shard integer;
CREATE INDEX webhook_deliveries_due_by_shard ON webhook_deliveries (shard, next_attempt_us) WHERE status = 'pending';
