-- Effectively-once: the key of an applied external message (a Stripe event
-- id, a Kafka command id) is recorded in the same transaction as its change;
-- a second delivery finds it and changes nothing.
CREATE TABLE processed_messages (
  message_key  text PRIMARY KEY,
  applied_us   bigint NOT NULL
);

-- Ids of a tenant in other systems (e.g. its Stripe customer), to find the
-- tenant when a later message names only those.
CREATE TABLE external_ids (
  system       text NOT NULL,
  external_id  text NOT NULL,
  tenant_id    text NOT NULL,
  PRIMARY KEY (system, external_id)
);
