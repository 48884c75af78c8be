package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// OrdersHTTP is the orders-http scenario: POST /v1/orders, expecting 202
// (the order is durable in JetStream), collecting every acknowledged
// order_id. Verification waits for order-persist to drain the backlog and
// checks the store holds exactly those orders.
type OrdersHTTP struct {
	cfg  OrdersConfig
	c    *httpClient
	u    *url.URL
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
func (s *OrdersHTTP) Setup(ctx context.Context, workers int) (err error) {
	if s.c, err = newHTTPClient(s.cfg.HTTP, workers); err != nil {
		return err
	}
	if s.cfg.Count != nil {
		if err := s.cfg.Count.start(ctx); err != nil {
			return err
		}
	}
	s.ws = make([]ordersHTTPWorker, workers)
	for i := range s.ws {
		s.ws[i].gen = orderGen{rnd: newRand(), base: s.base, users: int64(s.cfg.Users), items: s.cfg.PayloadItems}
	}
	path := s.cfg.Path
	if path == "" {
		path = "/v1/orders"
	}
	s.u, err = s.c.endpoint(path)
	return err
}

// Do implements Scenario.
func (s *OrdersHTTP) Do(ctx context.Context, w int) string {
	ws := &s.ws[w]
	var user, total int64
	ws.body, user, total = ws.gen.appendOrder(ws.body[:0], "")
	if kind := s.c.sendAs(ctx, user, http.MethodPost, s.u, ws.body, http.StatusAccepted, &ws.resp); kind != "" {
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
// {"order_id":"...","status":"accepted","total_cents":N}: by hand (no
// reflection, one allocation for the id), with encoding/json as the
// fallback for any other layout.
func parseAccepted(b []byte) (id string, total int64, ok bool) {
	rawID, ok1 := jsonField(b, `"order_id":"`, '"')
	rawTotal, ok2 := jsonField(b, `"total_cents":`, '}')
	if ok1 && ok2 && len(rawID) > 0 && bytes.Contains(b, []byte(`"status":"accepted"`)) {
		if n, err := strconv.ParseInt(string(bytes.TrimSpace(rawTotal)), 10, 64); err == nil {
			return string(rawID), n, true
		}
	}
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

// jsonField returns the bytes after key up to the first of end or ','.
func jsonField(b []byte, key string, end byte) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := b[i+len(key):]
	j := bytes.IndexAny(rest, string([]byte{end, ','}))
	if j < 0 {
		return nil, false
	}
	if end == '"' && rest[j] != '"' {
		return nil, false
	}
	return rest[:j], true
}

// Close implements Scenario.
func (s *OrdersHTTP) Close() error {
	s.c.close()
	return nil
}

// Verify implements Verifier.
func (s *OrdersHTTP) Verify(ctx context.Context, r *Result) (*Verification, error) {
	var acked []ackedOrder
	for i := range s.ws {
		acked = append(acked, s.ws[i].acked...)
	}
	if s.cfg.Count != nil {
		return s.cfg.Count.verify(ctx, int64(len(acked)), r)
	}
	if s.cfg.Drain == nil {
		return nil, nil
	}
	return verifyOrders(ctx, s.cfg, s.c, s.base, acked, r)
}
