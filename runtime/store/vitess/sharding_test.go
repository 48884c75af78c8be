package vitess

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"vitess.io/vitess/go/vt/vitessdriver"

	"github.com/surgefn/surge/runtime/store"
)

// The shards of the test keyspace (scripts/vitess-test-env.sh).
var shards = []string{"-80", "80-"}

// shardDB opens a connection that addresses one shard of the keyspace
// directly, bypassing vtgate's routing.
func shardDB(t *testing.T, shard string) *sql.DB {
	t.Helper()
	db, err := vitessdriver.Open(vtgate(t), DefaultKeyspace+":"+shard)
	if err != nil {
		t.Fatalf("open shard %s: %v", shard, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// vindexShards asks vtgate which shard each id maps to under vindex, by
// querying the vindex as a table.
func vindexShards(ctx context.Context, t *testing.T, s *Store, vindex string, ids []any) map[string]string {
	t.Helper()
	rows, err := s.db.QueryContext(ctx, inSQL("SELECT id, shard FROM "+vindex+" WHERE id", len(ids)), ids...)
	if err != nil {
		t.Fatalf("query vindex %s: %v", vindex, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, shard string
		if err := rows.Scan(&id, &shard); err != nil {
			t.Fatal(err)
		}
		out[id] = shard
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// usersByShard returns perShard fresh random user ids for each shard, as
// the hash vindex places them.
func usersByShard(ctx context.Context, t *testing.T, s *Store, rnd *rand.Rand, perShard int) map[string][]int64 {
	t.Helper()
	out := map[string][]int64{}
	for len(out[shards[0]]) < perShard || len(out[shards[1]]) < perShard {
		ids := make([]any, 16)
		for i := range ids {
			ids[i] = rnd.Int64N(1<<62) + 1
		}
		for id, shard := range vindexShards(ctx, t, s, "hash", ids) {
			var u int64
			if _, err := fmt.Sscan(id, &u); err != nil {
				t.Fatal(err)
			}
			if len(out[shard]) < perShard {
				out[shard] = append(out[shard], u)
			}
		}
	}
	return out
}

func testOrders(rnd *rand.Rand, tag string, user int64, n int) []store.Order {
	at := time.Date(2025, 11, 11, 0, 0, 0, 0, time.UTC)
	out := make([]store.Order, n)
	for i := range out {
		out[i] = store.Order{
			OrderID: fmt.Sprintf("%s-%d-%d", tag, user, i), UserID: user, Currency: "CNY", Status: "created",
			Items:     []store.Item{{SKU: "sku-1", Qty: 1 + i, PriceCents: 100}},
			CreatedAt: at.Add(time.Duration(rnd.IntN(3600)) * time.Second),
		}
	}
	return out
}

// TestShardingByUser proves the layout: a user's orders all sit on the
// shard hash(user_id) maps to and none on the other, users of both key
// ranges written in one batch land on different shards, and each lookup
// row sits on the shard of xxhash(order_id).
func TestShardingByUser(t *testing.T) {
	s := openT(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	tag := fmt.Sprintf("shard-%x", rnd.Uint64())
	const perShard, perUser = 4, 5
	byShard := usersByShard(ctx, t, s, rnd, perShard)
	home := map[int64]string{}
	var batch []store.Order
	var users []any
	for shard, us := range byShard {
		for _, u := range us {
			home[u] = shard
			users = append(users, u)
			batch = append(batch, testOrders(rnd, tag, u, perUser)...)
		}
	}
	rnd.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	if n, err := s.PutOrders(ctx, batch); err != nil || n != len(batch) {
		t.Fatalf("PutOrders of %d orders = %d, %v", len(batch), n, err)
	}

	for _, shard := range shards {
		db := shardDB(t, shard)
		got := map[int64]int{}
		rows, err := db.QueryContext(ctx, inSQL("SELECT user_id, COUNT(*) FROM orders WHERE user_id", len(users))+" GROUP BY user_id", users...)
		if err != nil {
			t.Fatalf("shard %s: %v", shard, err)
		}
		for rows.Next() {
			var u int64
			var n int
			if err := rows.Scan(&u, &n); err != nil {
				t.Fatal(err)
			}
			got[u] = n
		}
		if err := drain(rows); err != nil {
			t.Fatal(err)
		}
		for u, want := range home {
			wantN := 0
			if want == shard {
				wantN = perUser
			}
			if got[u] != wantN {
				t.Errorf("shard %s holds %d orders of user %d (hash -> %s), want %d", shard, got[u], u, want, wantN)
			}
		}
		t.Logf("shard %s: orders of users %v", shard, byShard[shard])
	}

	ids := make([]any, len(batch))
	for i, o := range batch {
		ids[i] = o.OrderID
	}
	want := vindexShards(ctx, t, s, "xxhash", ids)
	lookupShards := map[string]bool{}
	for _, shard := range shards {
		rows, err := shardDB(t, shard).QueryContext(ctx, inSQL("SELECT order_id FROM order_lookup WHERE order_id", len(ids)), ids...)
		if err != nil {
			t.Fatalf("shard %s: %v", shard, err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			lookupShards[shard] = true
			if want[id] != shard {
				t.Errorf("lookup row of %s on shard %s, want %s", id, shard, want[id])
			}
		}
		if err := drain(rows); err != nil {
			t.Fatal(err)
		}
	}
	if len(lookupShards) != len(shards) {
		t.Errorf("lookup rows of %d ids on shards %v, want every shard", len(ids), lookupShards)
	}
}

// TestRedeliveryCompletesHalfWrittenBatch sets up what a batch spanning
// both shards leaves when its orders insert failed on shard 80- (each
// shard's part commits by itself): every id claimed, the orders of -80's
// users stored, those of 80-'s users not.
// The redelivered batch inserts exactly the missing orders.
func TestRedeliveryCompletesHalfWrittenBatch(t *testing.T) {
	s := openT(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	tag := fmt.Sprintf("half-%x", rnd.Uint64())
	byShard := usersByShard(ctx, t, s, rnd, 3)
	var committed, lost []store.Order
	for _, u := range byShard["-80"] {
		committed = append(committed, testOrders(rnd, tag, u, 4)...)
	}
	for _, u := range byShard["80-"] {
		lost = append(lost, testOrders(rnd, tag, u, 4)...)
	}
	if n, err := s.PutOrders(ctx, committed); err != nil || n != len(committed) {
		t.Fatalf("PutOrders(committed half) = %d, %v", n, err)
	}
	var args []any
	for _, o := range lost {
		args = append(args, o.OrderID, o.UserID)
	}
	if _, err := s.db.ExecContext(ctx, valuesSQL("INSERT INTO order_lookup (order_id, user_id)", 2, len(lost)), args...); err != nil {
		t.Fatalf("claim the lost half: %v", err)
	}
	// Half a batch is visible until the redelivery.
	if _, err := s.GetOrder(ctx, lost[0].OrderID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetOrder of a claimed, unstored order: %v, want ErrNotFound", err)
	}

	batch := slices.Concat(committed, lost)
	rnd.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	for i, want := range []int{len(lost), 0} {
		if n, err := s.PutOrders(ctx, batch); err != nil || n != want {
			t.Fatalf("redelivery %d: PutOrders = %d, %v; want %d", i+1, n, err, want)
		}
	}
	for _, o := range batch {
		got, err := s.GetOrder(ctx, o.OrderID)
		if err != nil || got.UserID != o.UserID || !got.CreatedAt.Equal(o.CreatedAt) {
			t.Fatalf("GetOrder(%s) after redelivery = %+v, %v", o.OrderID, got, err)
		}
	}
	for _, u := range slices.Concat(byShard["-80"], byShard["80-"]) {
		list, err := s.ListOrders(ctx, u, 0, 10)
		if err != nil || len(list) != 4 || !strings.HasPrefix(list[0].OrderID, tag) {
			t.Fatalf("ListOrders(%d) after redelivery = %d orders, %v; want 4", u, len(list), err)
		}
	}
}

// TestWaitingBatchHoldsNoLocksElsewhere: while a batch waits for a row lock
// on one shard, the rows it already wrote on the other shard are
// committed, not held. Held, two batches that share orders (a client's
// retry of an order whose ack was lost, a redelivery while the first
// delivery still runs) each lock rows on one shard and wait for the other's
// on the other shard: a deadlock no MySQL sees, that lasts until a caller
// times out, and forms again at the redeliveries (make chaos timed out
// about a hundred batches a run; see "Writes and transactions" in doc.go).
func TestWaitingBatchHoldsNoLocksElsewhere(t *testing.T) {
	s := openT(t)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	tag := fmt.Sprintf("locked-%x", rnd.Uint64())
	user := usersByShard(ctx, t, s, rnd, 1)["-80"][0]
	orders := testOrders(rnd, tag, user, 32) // on one shard: p = 2^-31
	ids := make([]any, len(orders))
	for i, o := range orders {
		ids[i] = o.OrderID
	}
	lookupShard := vindexShards(ctx, t, s, "xxhash", ids)
	var here, there *store.Order // lookup rows on shard -80, 80-
	for i := range orders {
		switch lookupShard[orders[i].OrderID] {
		case "-80":
			here = &orders[i]
		case "80-":
			there = &orders[i]
		}
	}
	if here == nil || there == nil {
		t.Fatalf("the orders' lookup rows are not on both shards: %v", lookupShard)
	}

	// Another session holds the lock on the lookup row of there.
	tx, err := shardDB(t, "80-").BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "INSERT INTO order_lookup (order_id, user_id) VALUES (?, ?)", there.OrderID, there.UserID); err != nil {
		t.Fatalf("lock a lookup row: %v", err)
	}
	waiting := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		n, err := s.PutOrders(ctx, []store.Order{*here, *there})
		if err == nil && n != 1 {
			err = fmt.Errorf("stored %d orders, want 1 (the other is the probe's)", n)
		}
		waiting <- err
	}()
	// The batch waits for the lock on 80-; its row on -80 is committed.
	minus80 := shardDB(t, "-80")
	pollCtx, cancelPoll := context.WithTimeout(ctx, 10*time.Second)
	defer cancelPoll()
	for deadline := time.Now().Add(5 * time.Second); ; {
		var n int
		if err := minus80.QueryRowContext(pollCtx, "SELECT COUNT(*) FROM order_lookup WHERE order_id = ?", here.OrderID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		select {
		case err := <-waiting:
			t.Fatalf("the batch did not wait for the locked row: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("5s after the batch started, its lookup row on -80 is not committed: it is held while the batch waits on 80-")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// here's lookup row, written by the waiting batch on -80, is not
	// locked: a batch of here alone claims it as its user's and stores it.
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	start := time.Now()
	if n, err := s.PutOrders(short, []store.Order{*here}); err != nil || n != 1 {
		t.Fatalf("PutOrders of an order whose lookup row a waiting batch wrote on the other shard = %d, %v after %v; want 1 at once (is the row locked?)",
			n, err, time.Since(start).Round(time.Millisecond))
	}
	select {
	case err := <-waiting:
		t.Fatalf("the batch did not wait for the locked row: %v", err)
	default:
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("the batch, once the lock was released: %v", err)
	}
	for _, o := range []*store.Order{here, there} {
		if got, err := s.GetOrder(ctx, o.OrderID); err != nil || got.UserID != user {
			t.Fatalf("GetOrder(%s) = %+v, %v", o.OrderID, got, err)
		}
	}
}
