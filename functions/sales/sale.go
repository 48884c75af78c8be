package sales

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/stock"
)

// Limits of a sale.
const (
	// MaxStock bounds a sale's stock: every process selling it keeps each
	// buyer's units and retry keys in memory (runtime/stock.Ledger).
	MaxStock = 1_000_000
	// MaxPerUser bounds per_user.
	MaxPerUser = 100
	// MaxSKULen is the longest SKU (as for orders).
	MaxSKULen = orders.MaxSKULen
	// MaxIdempotencyKeyLen bounds the Idempotency-Key header (as for orders).
	MaxIdempotencyKeyLen = orders.MaxIdempotencyKeyLen
)

// saleIDPattern keeps a sale id usable in KV keys and order ids (32 + user
// id + purchase number fits the 64 characters of an order_id).
var saleIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Sale is a sale as stored under "sale.<sale_id>" and returned by PUT.
type Sale struct {
	SaleID     string    `json:"sale_id"`
	SKU        string    `json:"sku"`
	Stock      int64     `json:"stock"`
	PriceCents int64     `json:"price_cents"`
	Currency   string    `json:"currency"`
	PerUser    int       `json:"per_user"`
	StartsAt   time.Time `json:"starts_at"`
	EndsAt     time.Time `json:"ends_at"`
}

// saleInput is the body of PUT /v1/sales/{sale_id}.
type saleInput struct {
	SKU        *string `json:"sku" jsonschema:"required;minLength=1;maxLength=64"`
	Stock      *int64  `json:"stock" jsonschema:"required;minimum=0;maximum=1000000"`
	PriceCents *int64  `json:"price_cents" jsonschema:"required;minimum=0;maximum=1099511627776"`
	Currency   *string `json:"currency" jsonschema:"required"`
	PerUser    *int    `json:"per_user" jsonschema:"required;minimum=1;maximum=100"`
	StartsAt   *string `json:"starts_at" jsonschema:"required;format=date-time"`
	EndsAt     *string `json:"ends_at" jsonschema:"required;format=date-time;description=after starts_at"`
}

// Status values of GET.
const (
	StatusScheduled = "scheduled"
	StatusOpen      = "open"
	StatusSoldOut   = "sold_out"
	StatusEnded     = "ended"
)

func saleKey(id string) string { return "sale." + id }

// saleID reads and checks the sale_id route parameter, or for a NATS call
// without it, the body's sale_id.
func saleID(req *runtime.Request, body string) (string, error) {
	id := req.Param("sale_id")
	if id == "" {
		id = body
	}
	if !saleIDPattern.MatchString(id) {
		return "", runtime.BadRequest("sale_id", "must be 1 to 32 characters of A-Z, a-z, 0-9, '_' or '-'")
	}
	return id, nil
}

// validate turns the PUT body into a sale.
func (in *saleInput) validate(id string) (Sale, error) {
	s := Sale{SaleID: id}
	switch {
	case in.SKU == nil || *in.SKU == "" || len(*in.SKU) > MaxSKULen:
		return s, runtime.BadRequest("sku", "required, 1 to %d characters", MaxSKULen)
	case in.Stock == nil || *in.Stock < 0 || *in.Stock > MaxStock:
		return s, runtime.BadRequest("stock", "required, 0 to %d", MaxStock)
	case in.PriceCents == nil || *in.PriceCents < 0 || *in.PriceCents > 1<<40:
		return s, runtime.BadRequest("price_cents", "required, 0 to %d", int64(1<<40))
	case in.Currency == nil || !orders.KnownCurrency(*in.Currency):
		return s, runtime.BadRequest("currency", "required, an upper-case ISO 4217 code")
	case in.PerUser == nil || *in.PerUser < 1 || *in.PerUser > MaxPerUser:
		return s, runtime.BadRequest("per_user", "required, 1 to %d", MaxPerUser)
	}
	s.SKU, s.Stock, s.PriceCents, s.Currency, s.PerUser = *in.SKU, *in.Stock, *in.PriceCents, *in.Currency, *in.PerUser
	var err error
	if s.StartsAt, err = parseTime("starts_at", in.StartsAt); err != nil {
		return s, err
	}
	if s.EndsAt, err = parseTime("ends_at", in.EndsAt); err != nil {
		return s, err
	}
	if !s.EndsAt.After(s.StartsAt) {
		return s, runtime.BadRequest("ends_at", "must be after starts_at")
	}
	return s, nil
}

func parseTime(field string, v *string) (time.Time, error) {
	if v == nil {
		return time.Time{}, runtime.BadRequest(field, "required, an RFC 3339 time")
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		return time.Time{}, runtime.BadRequest(field, "must be an RFC 3339 time such as 2026-11-21T10:00:00Z")
	}
	return t.UTC(), nil
}

// base is what the three functions share: the bucket of sale records, the
// stock ledger and the clock.
type base struct {
	kv     jetstream.KeyValue
	nc     runtime.Requester
	ledger *stock.Ledger
	clock  runtime.Clock
	sales  *runtime.Cache[string, Sale]
}

func (b *base) provision(ctx context.Context, env *runtime.Env) error {
	kv, err := env.KV(Bucket)
	if err != nil {
		return err
	}
	if err := env.RequireStream(ctx, LedgerPrefix+".x.take"); err != nil {
		return err
	}
	if err := stock.CheckStream(ctx, env.JS, LedgerStream); err != nil {
		return err
	}
	b.kv, b.nc, b.clock = kv, env.NC, env.Clock
	b.ledger = stock.NewLedger(env.JS, stock.LedgerConfig{Stream: LedgerStream, Prefix: LedgerPrefix,
		Encode: b.encodeOrders})
	return nil
}

// Cleanup stops the ledger's tails.
func (b *base) Cleanup() error {
	if b.ledger != nil {
		b.ledger.Close()
	}
	return nil
}

// load reads a sale: 404 not_found when unknown.
func (b *base) load(ctx context.Context, id string) (Sale, uint64, error) {
	// Not kv.Get alone: at 3 replicas a replica behind the PUT would call
	// a sale just made unknown.
	v, rev, err := runtime.KVGet(ctx, b.nc, b.kv, saleKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Sale{}, 0, runtime.Errorf(http.StatusNotFound, "not_found", "no sale %s", id)
	}
	if err != nil {
		return Sale{}, 0, unavailable(err)
	}
	var s Sale
	if err := json.Unmarshal(v, &s); err != nil {
		return Sale{}, 0, runtime.Internal(fmt.Errorf("sale %s: %w", id, err))
	}
	return s, rev, nil
}

// cacheSales makes sale cache sale records for ttl (0: not at all).
func (b *base) cacheSales(ttl time.Duration) {
	b.sales = runtime.NewCache[string, Sale](ttl, 1000, b.clock)
}

// sale reads a sale through the in-process cache: a record changed by a
// PUT shows within the cache's TTL.
func (b *base) sale(ctx context.Context, id string) (Sale, error) {
	if s, ok := b.sales.Get(id); ok {
		return s, nil
	}
	s, _, err := b.load(ctx, id)
	if err != nil {
		return Sale{}, err
	}
	b.sales.Put(id, s)
	return s, nil
}

// ledgerError is the answer to a ledger call's failure: 500 for a sale
// record without stock on the ledger (PUT it again), else 503.
func ledgerError(id string, err error) *runtime.Error {
	if errors.Is(err, stock.ErrNoStock) {
		return runtime.Internal(fmt.Errorf("sale %s has a record but no stock on the ledger; PUT it again: %w", id, err))
	}
	return unavailable(err)
}

// unavailable is a 503 for a KV or stream failure: retry.
func unavailable(err error) *runtime.Error {
	return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
		Msg: "the sale could not be read or written; retry later", Err: err}
}

// Put is sales.put.
type Put struct{ base }

var (
	_ runtime.Handler      = (*Put)(nil)
	_ runtime.Provisioner  = (*Put)(nil)
	_ runtime.CleanerUpper = (*Put)(nil)
)

// Provision opens the SALES bucket and the ledger.
func (p *Put) Provision(ctx context.Context, env *runtime.Env) error { return p.provision(ctx, env) }

// Handle creates or updates the sale. The stock is set on the ledger
// first, then the record: a call killed in between leaves stock without a
// record (the sale is still unknown) or the old record over the new stock,
// and the same PUT again finishes it. Lowering below the units sold is 409
// stock_below_sold.
func (p *Put) Handle(ctx context.Context, req *runtime.Request) error {
	id, err := saleID(req, "")
	if err != nil {
		return err
	}
	var in saleInput
	if err := runtime.DecodeJSON(req.Data, &in, ""); err != nil {
		return err
	}
	s, err := in.validate(id)
	if err != nil {
		return err
	}
	_, rev, err := p.load(ctx, id)
	var re *runtime.Error
	if err != nil && !(errors.As(err, &re) && re.Status == http.StatusNotFound) {
		return err
	}
	if _, err := p.ledger.Set(ctx, id, s.Stock); err != nil {
		if errors.Is(err, stock.ErrBelowSold) {
			return &runtime.Error{Status: http.StatusConflict, Code: "stock_below_sold",
				Msg: "stock: may not be lower than the units already sold", Err: err}
		}
		return unavailable(err)
	}
	b, _ := json.Marshal(s)
	if rev == 0 {
		_, err = p.kv.Create(ctx, saleKey(id), b)
	} else {
		_, err = p.kv.Update(ctx, saleKey(id), b, rev)
	}
	if runtime.IsKVConflict(err) {
		return runtime.Errorf(http.StatusConflict, "conflict", "sale %s was changed concurrently; retry", id)
	}
	if err != nil {
		return unavailable(err)
	}
	return req.RespondJSON(http.StatusOK, s)
}

// Get is sales.get.
type Get struct{ base }

var (
	_ runtime.Handler      = (*Get)(nil)
	_ runtime.Provisioner  = (*Get)(nil)
	_ runtime.CleanerUpper = (*Get)(nil)
)

// Provision opens the SALES bucket and the ledger. The sale records are
// cached for a second, as sales.order's are by default: a sale polled
// during its spike costs the ledger's read, not a KV read as well.
func (g *Get) Provision(ctx context.Context, env *runtime.Env) error {
	if err := g.provision(ctx, env); err != nil {
		return err
	}
	g.cacheSales(time.Second)
	return nil
}

// View is the answer of GET /v1/sales/{sale_id}.
type View struct {
	SaleID    string `json:"sale_id"`
	SKU       string `json:"sku"`
	Stock     int64  `json:"stock"`
	Sold      int64  `json:"sold"`
	Remaining int64  `json:"remaining"`
	Status    string `json:"status" jsonschema:"enum=scheduled|open|sold_out|ended"`
}

// Handle reports the sale's levels and status.
func (g *Get) Handle(ctx context.Context, req *runtime.Request) error {
	var body struct {
		SaleID string `json:"sale_id"`
	}
	if len(req.Data) > 0 && req.Param("sale_id") == "" {
		if err := runtime.DecodeJSON(req.Data, &body, ""); err != nil {
			return err
		}
	}
	id, err := saleID(req, body.SaleID)
	if err != nil {
		return err
	}
	s, err := g.sale(ctx, id)
	if err != nil {
		return err
	}
	l, err := g.ledger.Levels(ctx, id)
	if err != nil {
		return ledgerError(id, err)
	}
	return req.RespondJSON(http.StatusOK, View{SaleID: id, SKU: s.SKU, Stock: l.Total, Sold: l.Sold,
		Remaining: l.Remaining(), Status: status(s, l.Remaining(), g.clock.Now())})
}

// status is the sale's state at now.
func status(s Sale, remaining int64, now time.Time) string {
	switch {
	case now.Before(s.StartsAt):
		return StatusScheduled
	case !now.Before(s.EndsAt):
		return StatusEnded
	case remaining <= 0:
		return StatusSoldOut
	}
	return StatusOpen
}
