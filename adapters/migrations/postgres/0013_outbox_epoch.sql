-- The epoch of the shard's ownership each event was committed under
-- (docs/clustering.md, "Checking the invariants"): the cluster fence reads
-- it in the commit's transaction, so per shard the epochs of its events are
-- non-decreasing in commit order, and a commit by a node after its shard
-- moved would show as an older epoch after a newer one. NULL on one node.
ALTER TABLE outbox ADD COLUMN shard_epoch bigint;
