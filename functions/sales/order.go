package sales

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/stock"
	"github.com/surgefn/surge/runtime/wire"
)

// Order is sales.order. A purchase is, in this order:
//
//  1. the user's purchase record "user.<sale_id>.<user_id>" is read: the
//     orders the user completed in this sale. A known Idempotency-Key
//     replays its answer; units over per_user are 409 limit_reached.
//  2. The order id is "<sale_id>-<user_id>-<k>", k the user's next
//     purchase number, and it is the stock claim id: the reservation takes
//     the units at most once for it (runtime/stock).
//  3. The order is published to orders.submit with Nats-Msg-Id = order id,
//     and acked by JetStream: order-persist stores it exactly once.
//  4. The purchase is appended to the user's record (CAS), which moves k on.
//
// A call killed after 2 or 3 leaves the record unchanged, so the retry
// computes the same k, hence the same order id: its reservation is
// replayed (nothing more taken) and its publish is de-duplicated by
// JetStream (and after the duplicate window by the store, idempotent on
// order_id). A reservation nobody retries is published by the reconciler
// (reconcile.go). Concurrent calls of one user compute the same k and are
// one purchase: both answer the same order. So units taken == orders
// stored, and no user gets more than per_user units.
//
// Config: {"userLimit":10,"userWindow":"1s","ipLimit":0,"ipWindow":"1s",
// "saleCacheTTL":"1s","reconcileEvery":"10s"}: at most userLimit calls per
// user per window per instance (429 with Retry-After), the same per client
// IP (Surge-Client-Ip from the gateway) when ipLimit > 0; a sale record
// cached this long in-process (an update shows within it); the reconciler
// period (0s: off).
type Order struct {
	UserLimit      int                 `json:"userLimit"`
	UserWindow     *manifests.Duration `json:"userWindow,omitempty"`
	IPLimit        int                 `json:"ipLimit"`
	IPWindow       *manifests.Duration `json:"ipWindow,omitempty"`
	SaleCacheTTL   *manifests.Duration `json:"saleCacheTTL,omitempty"`
	ReconcileEvery *manifests.Duration `json:"reconcileEvery,omitempty"`

	base
	js      jetstream.JetStream
	log     *slog.Logger
	users   *limiter[int64]
	ips     *limiter[string]
	sales   *runtime.Cache[string, Sale]
	soldOut *runtime.Cache[string, bool]
	stop    context.CancelFunc
	done    chan struct{}
}

var (
	_ runtime.Handler      = (*Order)(nil)
	_ runtime.Validator    = (*Order)(nil)
	_ runtime.Provisioner  = (*Order)(nil)
	_ runtime.CleanerUpper = (*Order)(nil)
)

func dur(d *manifests.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Std()
}

// Validate checks the config.
func (o *Order) Validate() error {
	if o.UserLimit == 0 {
		o.UserLimit = 10
	}
	var errs []error
	if o.UserLimit < 0 {
		errs = append(errs, fmt.Errorf("userLimit: must be positive, got %d", o.UserLimit))
	}
	if o.IPLimit < 0 {
		errs = append(errs, fmt.Errorf("ipLimit: must be 0 (off) or positive, got %d", o.IPLimit))
	}
	for name, d := range map[string]*manifests.Duration{"userWindow": o.UserWindow, "ipWindow": o.IPWindow,
		"saleCacheTTL": o.SaleCacheTTL, "reconcileEvery": o.ReconcileEvery} {
		if d != nil && (d.Std() < 0 || d.Std() > time.Hour) {
			errs = append(errs, fmt.Errorf("%s: must be 0s to 1h, got %s", name, d.Std()))
		}
	}
	return errors.Join(errs...)
}

// Provision opens the bucket, checks the ORDERS stream and starts the
// reconciler.
func (o *Order) Provision(ctx context.Context, env *runtime.Env) error {
	if err := o.provision(env); err != nil {
		return err
	}
	if err := env.RequireStream(ctx, SubjectSubmit); err != nil {
		return err
	}
	o.js, o.log = env.JS, env.Logger
	o.users = newLimiter[int64](o.UserLimit, dur(o.UserWindow, time.Second), o.clock)
	if o.IPLimit > 0 {
		o.ips = newLimiter[string](o.IPLimit, dur(o.IPWindow, time.Second), o.clock)
	}
	o.sales = runtime.NewCache[string, Sale](dur(o.SaleCacheTTL, time.Second), 1000, o.clock)
	o.soldOut = runtime.NewCache[string, bool](250*time.Millisecond, 1000, o.clock)
	rctx, cancel := context.WithCancel(context.Background())
	o.stop, o.done = cancel, make(chan struct{})
	go o.reconcileLoop(rctx, dur(o.ReconcileEvery, 10*time.Second))
	return nil
}

// Cleanup stops the reconciler.
func (o *Order) Cleanup() error {
	if o.stop != nil {
		o.stop()
		<-o.done
	}
	return nil
}

// orderInput is the body of POST /v1/sales/{sale_id}/orders; sale_id only
// over NATS without the route parameter.
type orderInput struct {
	UserID int64  `json:"user_id" jsonschema:"minimum=1"`
	Qty    int64  `json:"qty" jsonschema:"minimum=1;maximum=100"`
	SaleID string `json:"sale_id" jsonschema:"optional;description=only on a NATS call without the path"`
}

// Accepted is the 202 answer.
type Accepted struct {
	OrderID    string `json:"order_id"`
	SaleID     string `json:"sale_id"`
	Status     string `json:"status" jsonschema:"enum=accepted"`
	TotalCents int64  `json:"total_cents"`
}

// purchases is a user's record in one sale.
type purchases struct {
	Orders []purchase `json:"orders"`
}

type purchase struct {
	OrderID string `json:"order_id"`
	Units   int64  `json:"units"`
	// Keys are the Idempotency-Keys that got this order.
	Keys []string `json:"keys,omitempty"`
	// Reconciled marks an order the reconciler published: its call died
	// after the reservation and was not retried (yet).
	Reconciled bool `json:"reconciled,omitempty"`
}

// adoptable is a reconciled purchase no Idempotency-Key claimed yet: a
// keyed call that would be over per_user gets it as its answer.
func (p *purchases) adoptable() (purchase, bool) {
	for _, o := range p.Orders {
		if o.Reconciled && len(o.Keys) == 0 {
			return o, true
		}
	}
	return purchase{}, false
}

func (p *purchases) units() (n int64) {
	for _, o := range p.Orders {
		n += o.Units
	}
	return n
}

func (p *purchases) byKey(key string) (purchase, bool) {
	for _, o := range p.Orders {
		for _, k := range o.Keys {
			if k == key {
				return o, true
			}
		}
	}
	return purchase{}, false
}

func userKey(sale string, user int64) string {
	return "user." + sale + "." + strconv.FormatInt(user, 10)
}

// OrderID is the order id of user's k-th purchase in sale.
func OrderID(sale string, user int64, k int) string {
	return sale + "-" + strconv.FormatInt(user, 10) + "-" + strconv.Itoa(k)
}

// Handle buys.
func (o *Order) Handle(ctx context.Context, req *runtime.Request) error {
	var in orderInput
	if err := runtime.DecodeJSON(req.Data, &in, ""); err != nil {
		return err
	}
	id, err := saleID(req, in.SaleID)
	if err != nil {
		return err
	}
	if in.UserID <= 0 {
		return runtime.BadRequest("user_id", "must be a positive 64-bit integer")
	}
	if in.Qty < 1 || in.Qty > MaxPerUser {
		return runtime.BadRequest("qty", "must be 1 to %d", MaxPerUser)
	}
	if err := req.AuthorizeUser(in.UserID); err != nil {
		return err
	}
	if err := o.limit(req, in.UserID); err != nil {
		return err
	}
	s, err := o.sale(ctx, id)
	if err != nil {
		return err
	}
	if st := status(s, 1, o.clock.Now()); st != StatusOpen {
		return runtime.Errorf(http.StatusConflict, "sale_not_open", "sale %s is %s", id, st)
	}
	key := req.Header.Get(runtime.HeaderIdempotencyKey)
	if len(key) > MaxIdempotencyKeyLen {
		return runtime.BadRequest(runtime.HeaderIdempotencyKey, "must be at most %d characters", MaxIdempotencyKeyLen)
	}
	// A sold-out sale answers from memory for a quarter second, but not a
	// call with an Idempotency-Key: that may be the retry of a call killed
	// after its reservation, which gets its 202 below (Reserve replays).
	if _, ok := o.soldOut.Get(id); ok && key == "" {
		return soldOut(id)
	}
	uk := userKey(id, in.UserID)
	rec, rev, err := o.purchases(ctx, uk)
	if err != nil {
		return err
	}
	if p, ok := rec.byKey(key); key != "" && ok {
		return o.accepted(req, s, p.OrderID, p.Units)
	}
	if rec.units()+in.Qty > int64(s.PerUser) {
		if p, ok := rec.adoptable(); ok && key != "" {
			// Most likely this very call's earlier try, killed after its
			// reservation and finished by the reconciler: its answer.
			p.Keys = keys(key)
			if err := o.record(ctx, uk, rec, rev, p); err != nil {
				return unavailable(err)
			}
			return o.accepted(req, s, p.OrderID, p.Units)
		}
		return runtime.Errorf(http.StatusConflict, "limit_reached",
			"user %d may buy at most %d units in sale %s", in.UserID, s.PerUser, id)
	}
	orderID := OrderID(id, in.UserID, len(rec.Orders)+1)
	claim, err := o.stock(s).Reserve(ctx, stockKey(id), orderID, in.Qty)
	switch {
	case errors.Is(err, stock.ErrSoldOut):
		o.soldOut.Put(id, true)
		return soldOut(id)
	case err != nil:
		return unavailable(err)
	}
	if err := o.publish(ctx, s, in.UserID, orderID, claim.Units); err != nil {
		return unavailable(err) // the retry publishes the same order
	}
	if err := o.record(ctx, uk, rec, rev, purchase{OrderID: orderID, Units: claim.Units, Keys: keys(key)}); err != nil {
		// The order is durable: answer 202. The record lags; the next
		// call of this user computes the same order id and completes it.
		o.log.Warn("sale purchase not recorded", "order_id", orderID, "err", err)
	}
	return o.accepted(req, s, orderID, claim.Units)
}

func keys(key string) []string {
	if key == "" {
		return nil
	}
	return []string{key}
}

func soldOut(id string) *runtime.Error {
	return runtime.Errorf(http.StatusConflict, "sold_out", "sale %s is sold out", id)
}

func (o *Order) accepted(req *runtime.Request, s Sale, orderID string, units int64) error {
	return req.RespondJSON(http.StatusAccepted, Accepted{OrderID: orderID, SaleID: s.SaleID,
		Status: "accepted", TotalCents: units * s.PriceCents})
}

// sale reads a sale through the in-process cache.
func (o *Order) sale(ctx context.Context, id string) (Sale, error) {
	if s, ok := o.sales.Get(id); ok {
		return s, nil
	}
	s, _, err := o.load(ctx, id)
	if err != nil {
		return Sale{}, err
	}
	o.sales.Put(id, s)
	return s, nil
}

func (o *Order) purchases(ctx context.Context, uk string) (purchases, uint64, error) {
	e, err := o.kv.Get(ctx, uk)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return purchases{}, 0, nil
	}
	if err != nil {
		return purchases{}, 0, unavailable(err)
	}
	var p purchases
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return purchases{}, 0, runtime.Internal(fmt.Errorf("purchases %s: %w", uk, err))
	}
	return p, e.Revision(), nil
}

// record appends p to the user's record read at rev, or adds its key to
// the entry of the same order that a concurrent call recorded.
func (o *Order) record(ctx context.Context, uk string, rec purchases, rev uint64, p purchase) error {
	for range 20 {
		found := false
		for i := range rec.Orders {
			if rec.Orders[i].OrderID == p.OrderID {
				found = true
				if len(p.Keys) == 0 || contains(rec.Orders[i].Keys, p.Keys[0]) {
					return nil
				}
				rec.Orders[i].Keys = append(rec.Orders[i].Keys, p.Keys[0])
			}
		}
		if !found {
			rec.Orders = append(rec.Orders, p)
		}
		b, _ := json.Marshal(rec)
		var err error
		if rev == 0 {
			_, err = o.kv.Create(ctx, uk, b)
		} else {
			_, err = o.kv.Update(ctx, uk, b, rev)
		}
		if !runtime.IsKVConflict(err) {
			return err
		}
		if rec, rev, err = o.purchases(ctx, uk); err != nil {
			return err
		}
	}
	return fmt.Errorf("purchases %s: too many lost races", uk)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// submit is the order as orders.submit takes it (docs/API.md section 4).
type submit struct {
	OrderID    string       `json:"order_id"`
	UserID     int64        `json:"user_id"`
	Items      []submitItem `json:"items"`
	Currency   string       `json:"currency"`
	CreatedAt  string       `json:"created_at"`
	TotalCents int64        `json:"total_cents"`
}

type submitItem struct {
	SKU        string `json:"sku"`
	Qty        int64  `json:"qty"`
	PriceCents int64  `json:"price_cents"`
}

// publish makes the order durable on orders.submit, de-duplicated on its
// order id.
func (o *Order) publish(ctx context.Context, s Sale, user int64, orderID string, units int64) error {
	b, err := json.Marshal(submit{OrderID: orderID, UserID: user,
		Items:    []submitItem{{SKU: s.SKU, Qty: units, PriceCents: s.PriceCents}},
		Currency: s.Currency, CreatedAt: o.clock.Now().UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano),
		TotalCents: units * s.PriceCents})
	if err != nil {
		return err
	}
	_, err = runtime.PublishDurable(ctx, o.js, &nats.Msg{Subject: SubjectSubmit, Data: b,
		Header: nats.Header{wire.HeaderMsgID: []string{orderID}}})
	if err != nil {
		return fmt.Errorf("publish order %s: %w", orderID, err)
	}
	return nil
}
