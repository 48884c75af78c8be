-- The commerce keyspace: surge's store on Vitess (runtime/store/vitess).
-- Generated from the table declarations in runtime/store/vitess (one file per
-- domain); edit those and run
--   go test ./runtime/store/vitess -run TestSchemaManifests -update
-- Sharded: vschema.json routes each table, and the comment above each table
-- here says why it has that vindex. Apply both files to a keyspace:
--
--   vtctldclient ApplySchema  --sql-file    schema.sql    commerce
--   vtctldclient ApplyVSchema --vschema-file vschema.json commerce
--
-- Every table has a unique key on its natural key, so every insert is an
-- INSERT IGNORE that a redelivered stream message turns into a no-op.
--
-- Every string column is binary (VARBINARY, BLOB): the store keeps strings
-- as bytes, like the buntdb keys and values, and never lets MySQL compare
-- or convert them. A character set would do harm twice. Keys: a case- and
-- pad-insensitive collation (the server default may be utf8mb3_general_ci,
-- as it is on the test cluster) would make "A1" and "a1 " one order while the
-- vindexes hash their bytes to different shards. Values: text is converted
-- through the tablet's connection character set, and the test cluster's
-- tablets talk utf8mb3 to MariaDB, which turns every 4-byte character
-- (emoji, rarer CJK) into '?'. Bytes pass through unchanged. To read a
-- column as text: SELECT CONVERT(items USING utf8mb4) ...

-- Red envelopes have no user key that every read has (the sender is not in
-- the grab or get calls), so they are sharded by xxhash of envelope_id, and
-- their grabs with them.
CREATE TABLE IF NOT EXISTS envelopes (
  envelope_id VARBINARY(64) NOT NULL,
  sender_id   BIGINT        NOT NULL,
  total_cents BIGINT        NOT NULL,
  share_count INT           NOT NULL,
  created_at  DATETIME(6)   NOT NULL,
  PRIMARY KEY (envelope_id)
) ENGINE=InnoDB;

-- One row per user and envelope, on the envelope's shard: the primary key
-- makes a rewritten grab (a retry, the seal that writes every grab of an
-- emptied envelope) an INSERT IGNORE no-op.
CREATE TABLE IF NOT EXISTS envelope_grabs (
  envelope_id  VARBINARY(64) NOT NULL,
  user_id      BIGINT        NOT NULL,
  amount_cents BIGINT        NOT NULL,
  grabbed_at   DATETIME(6)   NOT NULL,
  PRIMARY KEY (envelope_id, user_id)
) ENGINE=InnoDB;

-- Behaviour counters are per item, not per user: sharded by xxhash of
-- item_id (a string of up to 64 characters, 256 bytes). Each stream
-- message's contribution to an item is its own row, keyed (item_id, seq),
-- so applying a redelivered message is a no-op (INSERT IGNORE) without a
-- read-modify-write or a cross-shard transaction. ItemStats sums one item's
-- rows on its one shard.
CREATE TABLE IF NOT EXISTS item_event_counts (
  item_id VARBINARY(256)  NOT NULL,
  seq     BIGINT UNSIGNED NOT NULL,
  views   BIGINT          NOT NULL,
  clicks  BIGINT          NOT NULL,
  carts   BIGINT          NOT NULL,
  buys    BIGINT          NOT NULL,
  PRIMARY KEY (item_id, seq)
) ENGINE=InnoDB;

-- One marker per applied stream message, written after its counts rows:
-- INSERT IGNORE of the markers tells ApplyEvents how many messages were
-- new. Sharded by the hash vindex on seq: seq is an integer, and hash (a
-- bijective scramble of the 64-bit value) spreads consecutive sequences
-- over all shards. applied_at lets an operator prune markers older than
-- the streams' max age (72h), which can no longer be redelivered.
CREATE TABLE IF NOT EXISTS event_batches (
  seq        BIGINT UNSIGNED NOT NULL,
  applied_at DATETIME(6)     NOT NULL,
  PRIMARY KEY (seq)
) ENGINE=InnoDB;

-- SMS records have no user (the API takes a phone number), and every read
-- and write is by message_id, so they are sharded by xxhash of message_id.
-- (By phone would put a phone's messages together, but no query asks for
-- them, and a bulk send to one number would heat one shard.)
CREATE TABLE IF NOT EXISTS sms (
  message_id VARBINARY(64) NOT NULL,
  phone      VARBINARY(32) NOT NULL,
  template   VARBINARY(64) NOT NULL,
  params     BLOB          NOT NULL, -- JSON object, null when none
  text       BLOB          NOT NULL,
  status     VARBINARY(32) NOT NULL,
  attempts   INT           NOT NULL,
  last_error BLOB          NOT NULL,
  created_at DATETIME(6)   NOT NULL,
  updated_at DATETIME(6)   NOT NULL,
  PRIMARY KEY (message_id)
) ENGINE=InnoDB;

-- Orders live on the shard of their user (hash vindex on user_id): one
-- user's orders are always on one shard, so "newest first per user" is a
-- single-shard index scan of user_newest. The primary key (user_id,
-- order_id), not created_at, is what makes a resend with a new timestamp a
-- duplicate.
CREATE TABLE IF NOT EXISTS orders (
  user_id     BIGINT         NOT NULL,
  order_id    VARBINARY(64)  NOT NULL,
  items       MEDIUMBLOB     NOT NULL, -- JSON array of {sku, qty, price_cents}
  total_cents BIGINT         NOT NULL,
  currency    VARBINARY(16)  NOT NULL,
  status      VARBINARY(64)  NOT NULL,
  created_at  DATETIME(6)    NOT NULL,
  PRIMARY KEY (user_id, order_id),
  KEY user_newest (user_id, created_at, order_id)
) ENGINE=InnoDB;

-- order_id -> user_id, written by the store before the orders rows.
-- GET /v1/orders/{order_id} does not know the user, and orders published on
-- NATS carry client-chosen ids, so the shard cannot be encoded in the id.
-- Sharded by xxhash of order_id: the key is a string and every access is by
-- that string. Its primary key makes an order_id unique across users: the
-- first user to claim an id keeps it, a later claim by another user is
-- skipped. It is deliberately not a vtgate-managed consistent_lookup_unique
-- vindex: with INSERT IGNORE, vtgate v0.24 verifies every row of a batch
-- with its own query (a 500-order batch took ~180 ms) and inserts the
-- lookup rows sorted by keyspace id, so inside one batch the winner of a
-- contested id would not be the first order (see runtime/store/vitess).
CREATE TABLE IF NOT EXISTS order_lookup (
  order_id VARBINARY(64) NOT NULL,
  user_id  BIGINT        NOT NULL,
  PRIMARY KEY (order_id)
) ENGINE=InnoDB;

-- One row per user, on the user's shard (hash vindex on user_id, like
-- orders). version is the optimistic lock: the first write inserts version 1
-- (INSERT IGNORE on the primary key), every later write is an UPDATE ...
-- WHERE version = <expected>, so of concurrent writers with the same
-- expected version exactly one changes the row. name is UTF-8 bytes (up to
-- 64 characters of 4 bytes).
CREATE TABLE IF NOT EXISTS profiles (
  user_id    BIGINT         NOT NULL,
  name       VARBINARY(256) NOT NULL,
  level      INT            NOT NULL,
  version    BIGINT         NOT NULL,
  updated_at DATETIME(6)    NOT NULL,
  PRIMARY KEY (user_id)
) ENGINE=InnoDB;

-- One row per user and day, on the user's shard (hash vindex on user_id,
-- like orders): the primary key is what makes the first sign-in of a day
-- exactly one record, and the previous day's row, which the streak needs,
-- is on the same shard.
CREATE TABLE IF NOT EXISTS signins (
  user_id    BIGINT      NOT NULL,
  day        DATE        NOT NULL,
  streak     INT         NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (user_id, day)
) ENGINE=InnoDB;
