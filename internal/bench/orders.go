package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// OrdersConfig is what both order scenarios share.
type OrdersConfig struct {
	// HTTP is the gateway: orders-http posts to it, and verification of
	// both order scenarios reads the store through its public API.
	HTTP HTTPConfig
	// Users is the size of the run's user range (random base, so repeated
	// runs against the same store never share a user).
	Users int
	// PayloadItems is the number of lines per order (1..100).
	PayloadItems int
	// Drain is the consumer that persists orders (ORDERS / order-persist);
	// nil skips verification.
	Drain *DrainConfig
	// Sample is how many acknowledged orders are read back one by one.
	Sample int
	// Path is the route orders-http posts to (default /v1/orders), e.g.
	// a second order-accept with auth: user.
	Path string
	// Count, when set, verifies orders-http by a count of stored orders
	// instead of through surge's API: for the peer stack.
	Count *CountVerifier
}

func (c *OrdersConfig) validate() error {
	switch {
	case c.Users < 1:
		return fmt.Errorf("--users must be at least 1, got %d", c.Users)
	case c.PayloadItems < 1 || c.PayloadItems > 100:
		return fmt.Errorf("--payload-items must be 1 to 100, got %d", c.PayloadItems)
	case c.Sample < 0:
		return fmt.Errorf("--sample must not be negative, got %d", c.Sample)
	}
	return c.HTTP.validate()
}

// ackedOrder is an order the platform acknowledged: it must be stored.
type ackedOrder struct {
	id    string
	user  int64
	total int64
}

// orderGen builds order bodies for one worker.
type orderGen struct {
	rnd   *rand.Rand
	base  int64
	users int64
	items int
}

// appendOrder appends an order for a random user of the range and returns
// it with the user and the total. A non-empty orderID is included (the
// orders.submit form).
func (g *orderGen) appendOrder(b []byte, orderID string) ([]byte, int64, int64) {
	user := g.base + g.rnd.Int64N(g.users)
	var total int64
	b = append(b, `{"user_id":`...)
	b = strconv.AppendInt(b, user, 10)
	b = append(b, `,"items":[`...)
	for i := 0; i < g.items; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		qty, price := 1+g.rnd.Int64N(5), 100+g.rnd.Int64N(99_900)
		total += qty * price
		b = append(b, `{"sku":"BENCH-`...)
		b = strconv.AppendInt(b, g.rnd.Int64N(10_000), 10)
		b = append(b, `","qty":`...)
		b = strconv.AppendInt(b, qty, 10)
		b = append(b, `,"price_cents":`...)
		b = strconv.AppendInt(b, price, 10)
		b = append(b, '}')
	}
	b = append(b, `],"currency":"CNY"`...)
	if orderID != "" {
		b = append(b, `,"order_id":"`...)
		b = append(b, orderID...)
		b = append(b, '"')
	}
	return append(b, '}'), user, total
}

// orderView is one order as GET /v1/users/{id}/orders and GET
// /v1/orders/{id} show it (the fields verification needs).
type orderView struct {
	OrderID    string `json:"order_id"`
	UserID     int64  `json:"user_id"`
	TotalCents int64  `json:"total_cents"`
}

// listPageSize is the page size verification lists with (the API's maximum).
const listPageSize = 100

// verifyOrders waits for the backlog to drain, then checks that the users
// of the range hold exactly the acknowledged orders: none lost, none
// listed twice, none unexpected, and a sample read back by ID matches its
// user and total.
func verifyOrders(ctx context.Context, cfg OrdersConfig, c *httpClient, base int64, acked []ackedOrder, r *Result) (*Verification, error) {
	v := &Verification{Acked: int64(len(acked))}
	intakeEnd := r.Start.Add(time.Duration((r.Warmup + r.Seconds) * float64(time.Second)))
	drained, err := cfg.Drain.wait(ctx, r)
	if err != nil {
		return nil, err
	}
	v.DrainSeconds = max(0, drained.Sub(intakeEnd).Seconds())
	v.PersistedRate = float64(len(acked)) / drained.Sub(r.Start).Seconds()

	listed, err := listUsers(ctx, c, base, cfg.Users)
	if err != nil {
		return nil, err
	}
	want := make(map[string]ackedOrder, len(acked))
	for _, a := range acked {
		want[a.id] = a
	}
	seen := make(map[string]int, len(listed))
	var lost, dup, unexpected []string
	for _, o := range listed {
		seen[o.OrderID]++
		switch a, ok := want[o.OrderID]; {
		case seen[o.OrderID] > 1:
			v.Duplicated++
			dup = append(dup, o.OrderID)
		case !ok:
			v.Unexpected++
			unexpected = append(unexpected, o.OrderID)
		case a.user != o.UserID || a.total != o.TotalCents:
			v.SampleMismatches++
			v.Problems = append(v.Problems, fmt.Sprintf("order %s listed as user %d total %d, acknowledged as user %d total %d",
				o.OrderID, o.UserID, o.TotalCents, a.user, a.total))
		default:
			v.Stored++
		}
	}
	for _, a := range acked {
		if seen[a.id] == 0 {
			v.Lost++
			lost = append(lost, a.id)
		}
	}
	if err := sampleOrders(ctx, c, acked, cfg.Sample, v); err != nil {
		return nil, err
	}
	v.Problems = append(v.Problems, examples("lost (acknowledged, not stored)", lost)...)
	v.Problems = append(v.Problems, examples("listed more than once", dup)...)
	// A request that timed out may have been accepted after all: as many
	// unexpected orders as failed requests are explained, more are not.
	if v.Unexpected > r.Errors {
		v.Problems = append(v.Problems, examples("stored but never acknowledged", unexpected)...)
	}
	if len(v.Problems) > 8 {
		v.Problems = append(v.Problems[:8], fmt.Sprintf("... and %d more problems", len(v.Problems)-8))
	}
	v.Passed = v.Lost == 0 && v.Duplicated == 0 && v.SampleMismatches == 0 && v.Unexpected <= r.Errors
	return v, nil
}

func examples(what string, ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%d %s, e.g. %v", len(ids), what, ids[:min(3, len(ids))])}
}

// listUsers pages through the orders of users base..base+n-1, a few users
// at a time.
func listUsers(ctx context.Context, c *httpClient, base int64, n int) ([]orderView, error) {
	var (
		mu  sync.Mutex
		all []orderView
	)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for u := base; u < base+int64(n); u++ {
		g.Go(func() error {
			got, err := listUser(ctx, c, u)
			if err != nil {
				return err
			}
			mu.Lock()
			all = append(all, got...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return all, nil
}

// listUser lists the user's orders a page at a time, each page after the
// last order of the one before (keyset paging: a deep page costs the store
// no more than the first, where page=N walks every row before it).
func listUser(ctx context.Context, c *httpClient, user int64) ([]orderView, error) {
	var out []orderView
	for {
		path := fmt.Sprintf("/v1/users/%d/orders?size=%d", user, listPageSize)
		if len(out) > 0 {
			path += "&after=" + url.QueryEscape(out[len(out)-1].OrderID)
		}
		b, err := c.getJSON(ctx, path, http.StatusOK)
		if err != nil {
			return nil, err
		}
		var res struct {
			Orders []orderView `json:"orders"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		out = append(out, res.Orders...)
		if len(res.Orders) < listPageSize {
			return out, nil
		}
	}
}

// sampleOrders reads up to n random acknowledged orders by ID.
func sampleOrders(ctx context.Context, c *httpClient, acked []ackedOrder, n int, v *Verification) error {
	for _, i := range rand.Perm(len(acked))[:min(n, len(acked))] {
		a := acked[i]
		v.Sampled++
		var buf bytes.Buffer
		kind := c.do(ctx, http.MethodGet, "/v1/orders/"+a.id, nil, http.StatusOK, &buf)
		var got orderView
		switch {
		case kind == HTTPKind(http.StatusNotFound):
			v.SampleMismatches++
			v.Problems = append(v.Problems, fmt.Sprintf("GET /v1/orders/%s: 404, but it was acknowledged", a.id))
			continue
		case kind != "":
			return fmt.Errorf("GET /v1/orders/%s: %s: %s", a.id, kind, bytes.TrimSpace(buf.Bytes()))
		}
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			return fmt.Errorf("GET /v1/orders/%s: %w", a.id, err)
		}
		if got.OrderID != a.id || got.UserID != a.user || got.TotalCents != a.total {
			v.SampleMismatches++
			v.Problems = append(v.Problems, fmt.Sprintf("GET /v1/orders/%s: %+v, acknowledged as user %d total %d", a.id, got, a.user, a.total))
		}
	}
	return nil
}
