-- Timers per owned shard (docs/clustering.md, "Timers"): each node polls the
-- due timers of the shards it owns. The shard is the timer's tenant's
-- (runtime::cluster::shard_of), written by the node that sets the timer.
-- Rows set before this migration have none: the node that holds the
-- "timers" chore fires those, as every timer was fired before.
ALTER TABLE timers ADD COLUMN shard integer;
CREATE INDEX timers_by_shard ON timers (shard, due_us);
