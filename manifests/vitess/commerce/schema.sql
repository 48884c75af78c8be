-- The commerce keyspace: surge's store on Vitess. Sharded; see vschema.json
-- for how each table is routed. Every table has a unique key on its
-- natural key, so every write is idempotent (INSERT IGNORE / ON DUPLICATE
-- KEY UPDATE) and a redelivered stream message never creates a second row.

-- Orders live on the shard of their user (hash vindex on user_id): one
-- user's orders are always on one shard, so "newest first per user" is a
-- single-shard index scan.
CREATE TABLE IF NOT EXISTS orders (
  user_id     BIGINT       NOT NULL,
  order_id    VARCHAR(64)  NOT NULL,
  items       TEXT         NOT NULL,
  total_cents BIGINT       NOT NULL,
  currency    CHAR(3)      NOT NULL,
  status      VARCHAR(16)  NOT NULL,
  created_at  DATETIME(6)  NOT NULL,
  PRIMARY KEY (user_id, order_id),
  KEY user_newest (user_id, created_at, order_id)
) ENGINE=InnoDB;

-- GET /v1/orders/{order_id} does not know the user. Orders published on
-- NATS carry client-chosen ids, so the shard cannot be encoded in the id:
-- this is the backing table of a consistent_lookup_unique vindex
-- (order_id -> keyspace_id), itself sharded by xxhash of order_id. vtgate
-- writes it on every insert into orders and reads it to route order_id
-- lookups to one shard.
CREATE TABLE IF NOT EXISTS order_lookup (
  order_id    VARCHAR(64)    NOT NULL,
  keyspace_id VARBINARY(128) NOT NULL,
  PRIMARY KEY (order_id)
) ENGINE=InnoDB;

-- One row per user and day: the primary key is what makes the first
-- sign-in of a day exactly one record. Same shard as the user's orders.
CREATE TABLE IF NOT EXISTS signins (
  user_id    BIGINT      NOT NULL,
  day        DATE        NOT NULL,
  streak     INT         NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (user_id, day)
) ENGINE=InnoDB;

-- SMS records have no user (the API takes a phone number), so they are
-- sharded by xxhash of message_id: every read and write is by message_id.
CREATE TABLE IF NOT EXISTS sms (
  message_id VARCHAR(64)  NOT NULL,
  phone      VARCHAR(16)  NOT NULL,
  template   VARCHAR(64)  NOT NULL,
  params     TEXT         NOT NULL,
  text       TEXT         NOT NULL,
  status     VARCHAR(16)  NOT NULL,
  attempts   INT          NOT NULL,
  last_error TEXT         NOT NULL,
  created_at DATETIME(6)  NOT NULL,
  updated_at DATETIME(6)  NOT NULL,
  PRIMARY KEY (message_id)
) ENGINE=InnoDB;

-- Behaviour counters are per item, not per user: sharded by xxhash of
-- item_id. Each stream message's contribution to an item is its own row,
-- keyed (item_id, seq), so applying a redelivered message is a no-op
-- (INSERT IGNORE) without a cross-shard transaction; ItemStats sums one
-- item's rows on its one shard.
CREATE TABLE IF NOT EXISTS item_event_counts (
  item_id VARCHAR(64)     NOT NULL,
  seq     BIGINT UNSIGNED NOT NULL,
  views   BIGINT          NOT NULL,
  clicks  BIGINT          NOT NULL,
  carts   BIGINT          NOT NULL,
  buys    BIGINT          NOT NULL,
  PRIMARY KEY (item_id, seq)
) ENGINE=InnoDB;
