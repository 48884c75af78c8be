package sales

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/stock"
)

// Order is sales.order. A purchase is one take on the sale's ledger
// (runtime/stock.Ledger, key = sale id, holder = user id, limit =
// per_user, retry key = Idempotency-Key). The take's claim id,
// "<sale_id>-<user_id>-<n>" for the user's n-th purchase, is the order id,
// and the take's message carries the order (orders.submit form) as its
// body: when the ledger's publish is acked, the units are taken and the
// order is durable in one step; sale-persist stores it exactly once.
//
// A call killed before the ack leaves nothing or a message it never
// answered; its retry with the same Idempotency-Key finds the take on the
// ledger and answers its order (Replayed). Concurrent purchases of one
// sale in one process go out as one message (at most 1000 takes), so a
// hot SKU sells at the stream's message rate times the batch; processes
// and hosts agree through the ledger's compare-and-set on the sale's
// subjects. Limit reached, and sold out for a call without a key, are
// decided in memory once the ledger knows them; a keyed call told sold out
// first has the ledger read up to the stream's last message (it may be
// the retry of a take another host made).
//
// Config: {"userLimit":10,"userWindow":"1s","ipLimit":0,"ipWindow":"1s",
// "saleCacheTTL":"1s"}: at most userLimit calls per user per window per
// instance (429 with Retry-After), the same per client IP (Surge-Client-Ip
// from the gateway) when ipLimit > 0; a sale record cached this long
// in-process (an update shows within it).
type Order struct {
	UserLimit    int                 `json:"userLimit"`
	UserWindow   *manifests.Duration `json:"userWindow,omitempty"`
	IPLimit      int                 `json:"ipLimit"`
	IPWindow     *manifests.Duration `json:"ipWindow,omitempty"`
	SaleCacheTTL *manifests.Duration `json:"saleCacheTTL,omitempty"`

	base
	users *limiter[int64]
	ips   *limiter[string]
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
		"saleCacheTTL": o.SaleCacheTTL} {
		if d != nil && (d.Std() < 0 || d.Std() > time.Hour) {
			errs = append(errs, fmt.Errorf("%s: must be 0s to 1h, got %s", name, d.Std()))
		}
	}
	return errors.Join(errs...)
}

// Provision opens the bucket and the ledger.
func (o *Order) Provision(ctx context.Context, env *runtime.Env) error {
	if err := o.provision(ctx, env); err != nil {
		return err
	}
	o.users = newLimiter[int64](o.UserLimit, dur(o.UserWindow, time.Second), o.clock)
	if o.IPLimit > 0 {
		o.ips = newLimiter[string](o.IPLimit, dur(o.IPWindow, time.Second), o.clock)
	}
	o.cacheSales(dur(o.SaleCacheTTL, time.Second))
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

// OrderID is the order id of user's k-th purchase in sale: its claim id
// on the ledger.
func OrderID(sale string, user int64, k int) string {
	return stock.ClaimID(sale, strconv.FormatInt(user, 10), k)
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
	claim, err := o.ledger.Reserve(ctx, id, stock.Take{Holder: strconv.FormatInt(in.UserID, 10), Units: in.Qty,
		Limit: int64(s.PerUser), Key: key, Data: takeData{sale: s, user: in.UserID}})
	switch {
	case errors.Is(err, stock.ErrSoldOut):
		return soldOut(id)
	case errors.Is(err, stock.ErrLimit):
		return runtime.Errorf(http.StatusConflict, "limit_reached",
			"user %d may buy at most %d units in sale %s", in.UserID, s.PerUser, id)
	case err != nil:
		return ledgerError(id, err)
	}
	return req.RespondJSON(http.StatusAccepted, Accepted{OrderID: claim.ID, SaleID: id,
		Status: "accepted", TotalCents: claim.Units * s.PriceCents})
}

func soldOut(id string) *runtime.Error {
	return runtime.Errorf(http.StatusConflict, "sold_out", "sale %s is sold out", id)
}

// takeData is what a take carries to encodeOrders.
type takeData struct {
	sale Sale
	user int64
}

// encodeOrders is the ledger's Encode: the orders of a take message, as
// an orders.submit array in the compact form order-persist decodes
// fastest, one order per take with the claim id as its order id.
func (b *base) encodeOrders(_ string, takes []stock.Taken) ([]byte, error) {
	at := b.clock.Now().UTC().Truncate(time.Microsecond) // as order-accept's
	out := make([]byte, 0, 192*len(takes))
	out = append(out, '[')
	for i, t := range takes {
		d, ok := t.Data.(takeData)
		if !ok {
			return nil, fmt.Errorf("take %s: data %T, want a sale's", t.Claim, t.Data)
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = orders.AppendSubmit(out, &orders.LineOrder{OrderID: t.Claim, UserID: d.user, SKU: d.sale.SKU,
			Qty: int(t.Units), PriceCents: d.sale.PriceCents, Currency: d.sale.Currency, CreatedAt: at})
	}
	return append(out, ']'), nil
}
