package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
)

// OrdersHTTP is the orders-http scenario: POST /v1/orders, expecting 202
// (the order is durable in JetStream), collecting every acknowledged
// order_id. Verification waits for order-persist to drain the backlog and
// checks the store holds exactly those orders.
type OrdersHTTP struct {
	cfg  OrdersConfig
	c    *httpClient
	base int64
	ws   []ordersHTTPWorker
}

type ordersHTTPWorker struct {
	gen   orderGen
	body  []byte
	resp  bytes.Buffer
	acked []ackedOrder
}

// NewOrdersHTTP returns the orders-http scenario.
func NewOrdersHTTP(cfg OrdersConfig) (*OrdersHTTP, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &OrdersHTTP{cfg: cfg, base: userBase()}, nil
}

// Name implements Scenario.
func (*OrdersHTTP) Name() string { return "orders-http" }

// Setup implements Scenario.
func (s *OrdersHTTP) Setup(_ context.Context, workers int) (err error) {
	s.c, err = newHTTPClient(s.cfg.HTTP, workers)
	s.ws = make([]ordersHTTPWorker, workers)
	for i := range s.ws {
		s.ws[i].gen = orderGen{rnd: newRand(), base: s.base, users: int64(s.cfg.Users), items: s.cfg.PayloadItems}
	}
	return err
}

// Do implements Scenario.
func (s *OrdersHTTP) Do(ctx context.Context, w int) string {
	ws := &s.ws[w]
	var user, total int64
	ws.body, user, total = ws.gen.appendOrder(ws.body[:0], "")
	if kind := s.c.do(ctx, http.MethodPost, "/v1/orders", ws.body, http.StatusAccepted, &ws.resp); kind != "" {
		return kind
	}
	id, gotTotal, ok := parseAccepted(ws.resp.Bytes())
	if !ok || gotTotal != total {
		return KindBadResponse
	}
	ws.acked = append(ws.acked, ackedOrder{id: id, user: user, total: total})
	return ""
}

// parseAccepted reads order_id and total_cents from a 202 body,
// {"order_id":"...","status":"accepted","total_cents":N}.
func parseAccepted(b []byte) (id string, total int64, ok bool) {
	var res struct {
		OrderID    string `json:"order_id"`
		Status     string `json:"status"`
		TotalCents int64  `json:"total_cents"`
	}
	if json.Unmarshal(b, &res) != nil || res.OrderID == "" || res.Status != "accepted" {
		return "", 0, false
	}
	return res.OrderID, res.TotalCents, true
}

// Close implements Scenario.
func (s *OrdersHTTP) Close() error {
	s.c.close()
	return nil
}

// Verify implements Verifier.
func (s *OrdersHTTP) Verify(ctx context.Context, r *Result) (*Verification, error) {
	if s.cfg.Drain == nil {
		return nil, nil
	}
	var acked []ackedOrder
	for i := range s.ws {
		acked = append(acked, s.ws[i].acked...)
	}
	return verifyOrders(ctx, s.cfg, s.c, s.base, acked, r)
}
