// Package vitess is the store backend on a sharded Vitess keyspace, reached
// through vtgate's gRPC API with the Vitess database/sql driver
// (vitess.io/vitess/go/vt/vitessdriver). The keyspace's schema and vschema
// are manifests/vitess/commerce/schema.sql and vschema.json; Open checks
// that their tables exist.
//
// # Data model
//
//	table              vindex (shard key)   unique key         written by
//	orders             hash(user_id)        (user_id,order_id) PutOrders
//	order_lookup       xxhash(order_id)     (order_id)         PutOrders
//	signins            hash(user_id)        (user_id,day)      SignIn
//	sms                xxhash(message_id)   (message_id)       PutSMS, UpdateSMS
//	item_event_counts  xxhash(item_id)      (item_id,seq)      ApplyEvents
//	event_batches      hash(seq)            (seq)              ApplyEvents
//
// A user's orders and sign-ins live on the shard of hash(user_id), so every
// per-user read (ListOrders, GetSignIn, the streak) is a single-shard query.
// What has no user is keyed by the string it is read by (xxhash), or by the
// stream sequence (hash, which spreads consecutive integers evenly).
//
// Every string is stored as bytes (VARBINARY, BLOB; items and SMS params as
// JSON), so no collation decides which ids are equal and no connection
// character set rewrites text: the test cluster's tablets talk utf8mb3 to
// MariaDB and would turn 4-byte characters into '?' in a text column.
//
// order_lookup maps an order_id to its user: GetOrder reads it, then the
// user's shard. It also makes an order_id unique across users: PutOrders
// first claims every id with INSERT IGNORE into order_lookup, and only the
// orders whose id is now held by their own user are inserted. The store
// manages the table itself instead of declaring it a consistent_lookup_unique
// vindex, because with INSERT IGNORE vtgate v0.24 verifies each row of the
// batch with a separate query (a 500-order batch took ~180 ms, ~2,800
// orders/s) and writes the lookup rows sorted by keyspace id, which lets
// the wrong order win an id claimed twice in one batch. Managed here, a
// batch costs two or three statements whatever its size.
//
// Behaviour counters are one row per (item, stream message), so applying a
// message twice is an ignored duplicate rather than a read-modify-write;
// ItemStats sums an item's rows. The event_batches markers, written after
// the counts, are what tells ApplyEvents how many messages were new.
//
// # Writes and transactions
//
// Writes are batched: one multi-row INSERT IGNORE per table for up to
// maxRows rows, which vtgate splits into one statement per shard. Every
// statement runs in autocommit mode, which vtgate turns into an implicit
// transaction over the shards the statement touches. Each connection sets
// transaction_mode to MULTI, so the outcome does not depend on the
// vtgate's default: SINGLE would refuse every batch that spans shards, and
// TWOPC needs every tablet set up for it (semi-sync replication,
// --twopc-abandon-age) and costs several extra round trips per commit, to
// buy an atomicity these idempotent writes do not need (see below).
//
// No write spans two tables of one user: a batch's order_lookup and orders
// rows, and the counts and markers of an event batch, are on different
// shards by design, and a sign-in is one row. SignIn therefore needs no
// explicit transaction. Its only write is one INSERT IGNORE on the user's
// shard, and the primary key (user_id, day) decides which of any number of
// concurrent calls creates the record; the losers read the winner's row. The
// previous day's row, which the streak is computed from, is never updated,
// so reading it without a lock gives the result of some serial order of
// the calls. (A SELECT ... FOR UPDATE transaction would take gap locks on
// the missing row, and a hundred concurrent first sign-ins would deadlock
// each other.)
//
// # When a batch fails halfway
//
// A multi-row insert that spans shards is one vtgate transaction with one
// MySQL transaction per shard. If the statement fails on any shard while it
// executes, vtgate rolls back every shard: nothing is stored. If it fails
// while committing, MULTI commits the shards one after another, so the
// shards committed before the failing one keep their rows and the rest have
// none; the call returns the error. The same holds between statements:
// order_lookup claims may be committed while the orders insert fails, and
// event counts may be committed without their markers.
//
// The caller treats the error as a failed batch: the stream consumer does
// not ack it, and JetStream redelivers it. The redelivered batch runs the
// same statements. INSERT IGNORE skips every row already stored (the
// unique keys above), a claim in order_lookup by the same user is
// recognised as that user's own, and the missing rows are inserted, so the
// batch ends up stored exactly once. PutOrders and ApplyEvents count only
// the rows (markers) the redelivery added, so each order and each event
// message is reported as new by exactly one successful call. Until the
// redelivery, readers may see part of a batch: an order whose lookup row
// exists without its orders row is reported as not found, as it is while
// a write is in flight.
package vitess
