package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

var _ = addDomain[store.Orders]("Orders", RunOrders)

// RunOrders is the sub-suite of store.Orders.
func RunOrders(t *testing.T, open Opener) { runDomain(t, open, testOrders, ordersClosed) }

// ordersClosed are the calls that must return store.ErrClosed after Close.
var ordersClosed = []closedCall[store.Orders]{
	{"PutOrders", func(ctx context.Context, s store.Orders) error {
		_, err := s.PutOrders(ctx, []store.Order{{OrderID: "st-closed", UserID: 1, CreatedAt: time.Now()}})
		return err
	}},
	{"GetOrder", func(ctx context.Context, s store.Orders) error { _, err := s.GetOrder(ctx, "st-closed"); return err }},
	{"ListOrders", func(ctx context.Context, s store.Orders) error { _, err := s.ListOrders(ctx, 1, 0, 10); return err }},
	{"ListOrdersAfter", func(ctx context.Context, s store.Orders) error {
		_, err := s.ListOrdersAfter(ctx, 1, "st-closed", 10)
		return err
	}},
}

func testOrders(t *testing.T, open func(t *testing.T) store.Orders) {
	t.Run("PutOrdersIdempotent", func(t *testing.T) { testPutOrdersIdempotent(t, open) })
	t.Run("GetOrder", func(t *testing.T) { testGetOrder(t, open) })
	t.Run("GetOrderNotFound", func(t *testing.T) {
		s, g := open(t), newGen(t)
		if _, err := s.GetOrder(ctxT(t), g.id("missing")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetOrder of unknown id: err %v, want store.ErrNotFound", err)
		}
	})
	t.Run("ListOrdersPaging", func(t *testing.T) { testListOrdersPaging(t, open) })
	t.Run("ListOrdersAfter", func(t *testing.T) { testListOrdersAfter(t, open) })
	t.Run("ManyUsersOneBatch", func(t *testing.T) { testManyUsers(t, open, 64, 3) })
	t.Run("LargeBatch", func(t *testing.T) { testManyUsers(t, open, 100, 20) })
	t.Run("UsersIsolated", func(t *testing.T) { testUsersIsolated(t, open) })
}

// ref names an order in a table: its key, the index of its user, and
// whether it is a changed resend (new created_at and status, same id).
type ref struct {
	key    string
	user   int
	resend bool
}

func testPutOrdersIdempotent(t *testing.T, open func(t *testing.T) store.Orders) {
	a, b, c, d := ref{key: "a"}, ref{key: "b"}, ref{key: "c"}, ref{key: "d"}
	on := func(r ref, user int) ref { r.user = user; return r }
	resent := func(r ref) ref { r.resend = true; return r }
	tests := []struct {
		name         string
		batches      [][]ref
		wantInserted []int
	}{
		{"same batch twice", [][]ref{{a, b, c}, {a, b, c}}, []int{3, 0}},
		{"overlapping batches", [][]ref{{a, b}, {b, c, d}}, []int{2, 2}},
		{"duplicates inside one batch", [][]ref{{a, a, b, b, b}}, []int{2}},
		{"empty batch", [][]ref{{}}, []int{0}},
		{"resend with new created_at and status", [][]ref{{a, b}, {resent(a), resent(b), c}}, []int{2, 1}},
		{"same id for another user", [][]ref{{a}, {on(a, 1), b}}, []int{1, 1}},
		{"same id for two users in one batch", [][]ref{{a, on(a, 1)}}, []int{1}},
		{"users spanning shards, then again", [][]ref{{a, on(b, 1), on(c, 2)}, {on(c, 2), on(b, 1), a, on(d, 1)}}, []int{3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, g, ctx := open(t), newGen(t), ctxT(t)
			users := []int64{g.user(), g.user(), g.user()}
			at := g.base()
			base := map[string]store.Order{}
			first := map[string]store.Order{} // the version that must be stored
			build := func(r ref) store.Order {
				o, ok := base[r.key]
				if !ok {
					o = g.order(users[0], at.Add(time.Duration(len(base))*time.Second))
					base[r.key] = o
				}
				o.UserID = users[r.user]
				if r.resend {
					o.CreatedAt = o.CreatedAt.Add(time.Hour)
					o.Status = "paid"
				}
				if _, ok := first[r.key]; !ok {
					first[r.key] = o
				}
				return o
			}
			for i, batch := range tt.batches {
				orders := make([]store.Order, len(batch))
				for j, r := range batch {
					orders[j] = build(r)
				}
				n, err := s.PutOrders(ctx, orders)
				if err != nil {
					t.Fatalf("PutOrders batch %d: %v", i, err)
				}
				if n != tt.wantInserted[i] {
					t.Errorf("PutOrders batch %d inserted %d, want %d", i, n, tt.wantInserted[i])
				}
			}
			byUser := map[int64][]store.Order{}
			for key, want := range first {
				got, err := s.GetOrder(ctx, want.OrderID)
				if err != nil {
					t.Fatalf("GetOrder %s: %v", key, err)
				}
				if d := diffOrder(got, want); d != "" {
					t.Errorf("GetOrder %s: %s", key, d)
				}
				byUser[want.UserID] = append(byUser[want.UserID], want)
			}
			for _, u := range users {
				want := newestFirst(byUser[u])
				got, err := s.ListOrders(ctx, u, 0, 100)
				if err != nil {
					t.Fatalf("ListOrders: %v", err)
				}
				if !slices.Equal(orderIDs(got), orderIDs(want)) {
					t.Errorf("ListOrders of user %d = %v, want %v", u, orderIDs(got), orderIDs(want))
				}
			}
		})
	}
}

// newestFirst sorts a copy of os by created_at, then order_id, descending.
func newestFirst(os []store.Order) []store.Order {
	os = slices.Clone(os)
	slices.SortFunc(os, func(a, b store.Order) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.OrderID, a.OrderID)
	})
	return os
}

func testGetOrder(t *testing.T, open func(t *testing.T) store.Orders) {
	s, g, ctx := open(t), newGen(t), ctxT(t)
	shanghai := time.FixedZone("CST", 8*3600)
	tests := []struct {
		name  string
		order func() store.Order
	}{
		{"several items", func() store.Order { return g.order(g.user(), g.base()) }},
		{"no items", func() store.Order {
			return store.Order{OrderID: g.id("o"), UserID: g.user(), Currency: "USD", Status: "cancelled", CreatedAt: g.base()}
		}},
		{"unicode and a zone", func() store.Order {
			o := g.order(g.user(), time.Date(2025, 11, 11, 0, 0, 0, 123456000, shanghai))
			o.Items[0].SKU, o.Status = "茶叶-礼盒", "已支付"
			return o
		}},
		{"separators in the id", func() store.Order {
			o := g.order(g.user(), g.base())
			o.OrderID += ":x/y;z"
			return o
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.order()
			if n, err := s.PutOrders(ctx, []store.Order{want}); err != nil || n != 1 {
				t.Fatalf("PutOrders = %d, %v; want 1, nil", n, err)
			}
			got, err := s.GetOrder(ctx, want.OrderID)
			if err != nil {
				t.Fatalf("GetOrder: %v", err)
			}
			if d := diffOrder(got, want); d != "" {
				t.Errorf("GetOrder: %s", d)
			}
			list, err := s.ListOrders(ctx, want.UserID, 0, 10)
			if err != nil || len(list) != 1 {
				t.Fatalf("ListOrders = %d orders, %v; want 1", len(list), err)
			}
			if d := diffOrder(list[0], want); d != "" {
				t.Errorf("ListOrders: %s", d)
			}
		})
	}
}

// putPagingOrders stores 45 orders of user, in shuffled batches, and
// returns them newest first.
func putPagingOrders(ctx context.Context, t *testing.T, s store.Orders, g *gen, user int64) []store.Order {
	t.Helper()
	at := g.base()
	var all []store.Order
	for i := range 45 {
		// Groups of three share a created_at, so order_id breaks ties.
		all = append(all, g.order(user, at.Add(time.Duration(i/3)*time.Minute)))
	}
	shuffled := slices.Clone(all)
	g.rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for chunk := range slices.Chunk(shuffled, 7) {
		if _, err := s.PutOrders(ctx, chunk); err != nil {
			t.Fatalf("PutOrders: %v", err)
		}
	}
	return newestFirst(all)
}

// checkPage compares a listed page with what it should hold.
func checkPage(t *testing.T, call string, got, want []store.Order) {
	t.Helper()
	if w := orderIDs(want); !slices.Equal(orderIDs(got), w) {
		t.Errorf("%s = %v, want %v", call, orderIDs(got), w)
	}
	for i := range min(len(got), len(want)) {
		if d := diffOrder(got[i], want[i]); d != "" {
			t.Errorf("%s[%d]: %s", call, i, d)
		}
	}
}

func testListOrdersPaging(t *testing.T, open func(t *testing.T) store.Orders) {
	s, g, ctx := open(t), newGen(t), ctxT(t)
	user := g.user()
	want := putPagingOrders(ctx, t, s, g, user)
	tests := []struct {
		name          string
		offset, limit int
		wantFrom      int
		wantTo        int
	}{
		{"first page", 0, 20, 0, 20},
		{"second page", 20, 20, 20, 40},
		{"last partial page", 40, 20, 40, 45},
		{"offset at end", 45, 10, 45, 45},
		{"offset past end", 100, 10, 45, 45},
		{"all at once", 0, 100, 0, 45},
		{"middle", 3, 7, 3, 10},
		{"last one", 44, 1, 44, 45},
		{"zero limit", 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListOrders(ctx, user, tt.offset, tt.limit)
			if err != nil {
				t.Fatalf("ListOrders(%d, %d): %v", tt.offset, tt.limit, err)
			}
			checkPage(t, fmt.Sprintf("ListOrders(%d, %d)", tt.offset, tt.limit), got, want[tt.wantFrom:tt.wantTo])
		})
	}
	t.Run("page through", func(t *testing.T) {
		var got []store.Order
		for off := 0; ; off += 10 {
			page, err := s.ListOrders(ctx, user, off, 10)
			if err != nil {
				t.Fatalf("ListOrders(%d, 10): %v", off, err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
		}
		if !slices.Equal(orderIDs(got), orderIDs(want)) {
			t.Errorf("pages = %v, want %v", orderIDs(got), orderIDs(want))
		}
	})
}

func testListOrdersAfter(t *testing.T, open func(t *testing.T) store.Orders) {
	s, g, ctx := open(t), newGen(t), ctxT(t)
	user, other := g.user(), g.user()
	want := putPagingOrders(ctx, t, s, g, user)
	theirs := g.order(other, g.base().Add(time.Hour))
	if _, err := s.PutOrders(ctx, []store.Order{theirs}); err != nil {
		t.Fatalf("PutOrders: %v", err)
	}
	tests := []struct {
		name     string
		after    int // index in want
		limit    int
		wantFrom int
		wantTo   int
	}{
		{"after the newest", 0, 20, 1, 21},
		{"inside a tie", 1, 5, 2, 7},
		{"last partial page", 39, 20, 40, 45},
		{"after the oldest", 44, 10, 45, 45},
		{"zero limit", 3, 0, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListOrdersAfter(ctx, user, want[tt.after].OrderID, tt.limit)
			if err != nil {
				t.Fatalf("ListOrdersAfter(#%d, %d): %v", tt.after, tt.limit, err)
			}
			if got == nil {
				t.Errorf("ListOrdersAfter(#%d, %d) = nil, want an empty slice", tt.after, tt.limit)
			}
			checkPage(t, fmt.Sprintf("ListOrdersAfter(#%d, %d)", tt.after, tt.limit), got, want[tt.wantFrom:tt.wantTo])
		})
	}
	t.Run("page through", func(t *testing.T) {
		got, err := s.ListOrders(ctx, user, 0, 10)
		if err != nil {
			t.Fatalf("ListOrders: %v", err)
		}
		for page := got; len(page) == 10; {
			after := page[len(page)-1].OrderID
			if page, err = s.ListOrdersAfter(ctx, user, after, 10); err != nil {
				t.Fatalf("ListOrdersAfter(%s, 10): %v", after, err)
			}
			got = append(got, page...)
		}
		if !slices.Equal(orderIDs(got), orderIDs(want)) {
			t.Errorf("pages = %v, want %v", orderIDs(got), orderIDs(want))
		}
	})
	for _, tt := range []struct{ name, after string }{
		{"unknown order", g.id("missing")},
		{"another user's order", theirs.OrderID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := s.ListOrdersAfter(ctx, user, tt.after, 10); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ListOrdersAfter(%s) = %v, %v; want store.ErrNotFound", tt.after, orderIDs(got), err)
			}
		})
	}
}

// testManyUsers stores perUser orders for each of users users in one
// shuffled batch, stores it again, and reads every user's list back.
func testManyUsers(t *testing.T, open func(t *testing.T) store.Orders, users, perUser int) {
	s, g, ctx := open(t), newGen(t), ctxT(t)
	byUser := map[int64][]store.Order{}
	var batch []store.Order
	for range users {
		u, at := g.user(), g.base()
		for i := range perUser {
			o := g.order(u, at.Add(time.Duration(i)*time.Millisecond))
			byUser[u] = append(byUser[u], o)
			batch = append(batch, o)
		}
	}
	g.rnd.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	for i, want := range []int{len(batch), 0} {
		n, err := s.PutOrders(ctx, batch)
		if err != nil || n != want {
			t.Fatalf("PutOrders #%d of %d orders = %d, %v; want %d, nil", i+1, len(batch), n, err, want)
		}
	}
	for u, orders := range byUser {
		want := newestFirst(orders)
		got, err := s.ListOrders(ctx, u, 0, perUser+1)
		if err != nil {
			t.Fatalf("ListOrders: %v", err)
		}
		if !slices.Equal(orderIDs(got), orderIDs(want)) {
			t.Fatalf("ListOrders of user %d = %v, want %v", u, orderIDs(got), orderIDs(want))
		}
		for i := range got {
			if d := diffOrder(got[i], want[i]); d != "" {
				t.Fatalf("ListOrders of user %d [%d]: %s", u, i, d)
			}
		}
	}
	for i := 0; i < len(batch); i += max(1, len(batch)/200) {
		got, err := s.GetOrder(ctx, batch[i].OrderID)
		if err != nil {
			t.Fatalf("GetOrder: %v", err)
		}
		if d := diffOrder(got, batch[i]); d != "" {
			t.Fatalf("GetOrder %s: %s", batch[i].OrderID, d)
		}
	}
}

func testUsersIsolated(t *testing.T, open func(t *testing.T) store.Orders) {
	s, g, ctx := open(t), newGen(t), ctxT(t)
	a := g.user()
	b := a + 1 // neighbouring ids must not share a key prefix range
	at := g.base()
	var batch []store.Order
	for i := range 5 {
		batch = append(batch, g.order(a, at.Add(time.Duration(i)*time.Second)))
	}
	bOrders := []store.Order{g.order(b, at), g.order(b, at.Add(time.Hour))}
	batch = append(batch, bOrders...)
	if _, err := s.PutOrders(ctx, batch); err != nil {
		t.Fatalf("PutOrders: %v", err)
	}
	tests := []struct {
		name string
		user int64
		want []store.Order
	}{
		{"user with five", a, newestFirst(batch[:5])},
		{"neighbour with two", b, newestFirst(bOrders)},
		{"user with none", g.user(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListOrders(ctx, tt.user, 0, 50)
			if err != nil {
				t.Fatalf("ListOrders: %v", err)
			}
			if !slices.Equal(orderIDs(got), orderIDs(tt.want)) {
				t.Errorf("ListOrders = %v, want %v", orderIDs(got), orderIDs(tt.want))
			}
		})
	}
}

// order returns a fresh order of user created at at.
func (g *gen) order(user int64, at time.Time) store.Order {
	n := 1 + g.rnd.IntN(3)
	o := store.Order{OrderID: g.id("o"), UserID: user, Currency: "CNY", Status: "created", CreatedAt: at}
	for i := range n {
		it := store.Item{SKU: fmt.Sprintf("sku-%d", g.rnd.IntN(1000)), Qty: 1 + i, PriceCents: 100 + g.rnd.Int64N(10000)}
		o.Items = append(o.Items, it)
		o.TotalCents += int64(it.Qty) * it.PriceCents
	}
	return o
}

// diffOrder describes how got differs from want, or returns "".
func diffOrder(got, want store.Order) string {
	if !got.CreatedAt.Equal(want.CreatedAt) {
		return fmt.Sprintf("created_at %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	if len(got.Items) == 0 && len(want.Items) == 0 {
		got.Items, want.Items = nil, nil // nil and empty are the same order
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

func orderIDs(os []store.Order) []string {
	ids := make([]string, len(os))
	for i, o := range os {
		ids[i] = o.OrderID
	}
	return ids
}
