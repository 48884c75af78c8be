package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

// Query input, for both functions: over HTTP the gateway sends the path
// parameters as Surge-Param-<name> headers and the query string as
// Surge-Query; a direct NATS caller may set the same headers. When the
// path-parameter header is absent, the body is read instead, as JSON:
// {"order_id":"..."} for fn.orders.get, {"user_id":1,"page":1,"size":20}
// (page and size optional) for fn.orders.list.

// Defaults and bounds of GET /v1/users/{user_id}/orders.
const (
	DefaultPage = 1
	DefaultSize = 20
	MaxSize     = 100
	// maxOffset caps (page-1)*size: beyond it no user has orders, and the
	// answer is an empty page without asking the store.
	maxOffset = math.MaxInt32
)

// Get is orders.get: GET /v1/orders/{order_id} and fn.orders.get answer
// the stored order (order_id, user_id, items, total_cents, currency,
// status, created_at) or 404 order_not_found, also for another user's order
// when the call names a signed-in user (route auth: user).
type Get struct {
	store store.Orders
}

var (
	_ runtime.Handler     = (*Get)(nil)
	_ runtime.Provisioner = (*Get)(nil)
)

// Provision keeps the store.
func (g *Get) Provision(_ context.Context, env *runtime.Env) error {
	orders, err := store.As[store.Orders](env.Store)
	if err != nil {
		return err
	}
	g.store = orders
	return nil
}

// Handle reads one order.
func (g *Get) Handle(ctx context.Context, req *runtime.Request) error {
	id, ok := param(req, "order_id")
	if !ok && firstNonSpace(req.Data) >= 0 {
		var in struct {
			OrderID string `json:"order_id"`
		}
		if err := decodeStrict(req.Data, &in, []string{"order_id"}); err != nil {
			return err
		}
		id = in.OrderID
	}
	switch {
	case id == "":
		return runtime.BadRequest("order_id", "required")
	case !validOrderID(id):
		return runtime.BadRequest("order_id", "must be 1 to %d characters of A-Z, a-z, 0-9, '_' or '-'", MaxOrderIDLen)
	}
	o, err := g.store.GetOrder(ctx, id)
	// Another user's order reads as a missing one: a 403 would tell the
	// caller that the id exists.
	if errors.Is(err, store.ErrNotFound) || err == nil && req.AuthorizeUser(o.UserID) != nil {
		return runtime.Errorf(http.StatusNotFound, "order_not_found", "order %s not found", id)
	}
	if err != nil {
		return runtime.Internal(fmt.Errorf("get order %s: %w", id, err))
	}
	return req.RespondJSON(http.StatusOK, o)
}

// List is orders.list: GET /v1/users/{user_id}/orders?page=1&size=20 and
// fn.orders.list. It answers
//
//	{"user_id":1,"page":1,"size":20,"orders":[{...stored order...}, ...]}
//
// newest first (created_at, then order_id, descending); orders is [] past
// the last page. page >= 1 and size 1..100 (defaults 1 and 20). A page
// deep in a long history costs as many rows as it skips; after=ORDER_ID
// instead of page (the last order_id of the previous page) lists the
// orders after that one from its row on, at the same cost at any depth,
// and answers "after" in place of "page"; an after that is not an order of
// the user is a 400. A bad value is a 400 naming it; another user than the signed-in one (route
// auth: user) is 403 forbidden. Page 1 with size <= 20 comes from an L1 cache
// in this process (TTL l1TTL, default 1s) in front of the user's hot page:
// on a network store in ORDERS_HOT, which order-persist refreshes whenever
// the user's orders change, on the embedded store the store's own newest
// rows (hotCache.local); other pages come from the store.
type List struct {
	// L1TTL is how long a first page is served from memory (default 1s).
	L1TTL manifests.Duration `json:"l1TTL,omitempty"`
	// L1Size bounds how many users' first pages are kept (default 10000;
	// a page of 20 orders is a few KiB).
	L1Size int `json:"l1Size,omitempty"`

	store store.Orders
	hot   *hotCache
	l1    *runtime.Cache[int64, []json.RawMessage] // first pages, split into orders
}

var (
	_ runtime.Handler     = (*List)(nil)
	_ runtime.Provisioner = (*List)(nil)
	_ runtime.Validator   = (*List)(nil)
)

// Validate checks the config.
func (l *List) Validate() error {
	if l.L1TTL < 0 || l.L1TTL.Std() > time.Minute {
		return fmt.Errorf("l1TTL: must be 0 (default 1s) to 1m, got %s", l.L1TTL)
	}
	if l.L1Size < 0 {
		return fmt.Errorf("l1Size: must not be negative, got %d", l.L1Size)
	}
	return nil
}

// Provision keeps the store and opens ORDERS_HOT.
func (l *List) Provision(_ context.Context, env *runtime.Env) error {
	orders, err := store.As[store.Orders](env.Store)
	if err != nil {
		return err
	}
	kv, err := env.KV(BucketHot)
	if err != nil {
		return err
	}
	ttl, size := l.L1TTL.Std(), l.L1Size
	if ttl == 0 {
		ttl = time.Second
	}
	if size == 0 {
		size = 10_000
	}
	l.store = orders
	l.hot = &hotCache{kv: kv, store: orders}
	l.l1 = runtime.NewCache[int64, []json.RawMessage](ttl, size, env.Clock)
	return nil
}

// listQuery is a validated list request.
type listQuery struct {
	userID     int64
	page, size int
	after      string // an order_id: keyset paging instead of page
}

// Handle lists one page of a user's orders.
func (l *List) Handle(ctx context.Context, req *runtime.Request) error {
	q, verr := parseListQuery(req)
	if verr != nil {
		return verr
	}
	if err := req.AuthorizeUser(q.userID); err != nil {
		return err
	}
	if q.after != "" {
		return l.listAfter(ctx, req, q)
	}
	if q.page == 1 && q.size <= HotPageSize {
		orders, err := l.firstPage(ctx, q.userID)
		if err != nil {
			return runtime.Internal(err)
		}
		req.SetHeader(runtime.HeaderContentType, "application/json")
		req.Respond(appendListResponse(nil, q, orders[:min(q.size, len(orders))]))
		return nil
	}
	orders := []store.Order{}
	if q.page-1 <= maxOffset/q.size {
		var err error
		orders, err = l.store.ListOrders(ctx, q.userID, (q.page-1)*q.size, q.size)
		if err != nil {
			return runtime.Internal(fmt.Errorf("list orders of user %d: %w", q.userID, err))
		}
		if orders == nil {
			orders = []store.Order{}
		}
	}
	return req.RespondJSON(http.StatusOK, listResponse{UserID: q.userID, Page: q.page, Size: q.size, Orders: orders})
}

// listAfter answers a keyset page: the orders after q.after.
func (l *List) listAfter(ctx context.Context, req *runtime.Request, q listQuery) error {
	orders, err := l.store.ListOrdersAfter(ctx, q.userID, q.after, q.size)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return runtime.BadRequest("after", "no order %q of user %d", q.after, q.userID)
	case err != nil:
		return runtime.Internal(fmt.Errorf("list orders of user %d after %q: %w", q.userID, q.after, err))
	case orders == nil:
		orders = []store.Order{}
	}
	return req.RespondJSON(http.StatusOK, listResponse{UserID: q.userID, After: q.after, Size: q.size, Orders: orders})
}

// listResponse is the answer of orders.list (appendListResponse writes
// the same from the hot page): page for a page by number, after for a
// keyset page.
type listResponse struct {
	UserID int64         `json:"user_id"`
	Page   int           `json:"page,omitempty"`
	After  string        `json:"after,omitempty"`
	Size   int           `json:"size"`
	Orders []store.Order `json:"orders"`
}

// firstPage returns the user's newest HotPageSize orders as JSON: from L1,
// else from the hot cache (ORDERS_HOT filled from the store on a miss, or a
// local store itself: hotCache.get).
func (l *List) firstPage(ctx context.Context, userID int64) ([]json.RawMessage, error) {
	if orders, ok := l.l1.Get(userID); ok {
		return orders, nil
	}
	page, err := l.hot.get(ctx, userID)
	if err != nil {
		return nil, err
	}
	orders, err := splitPage(page)
	if err != nil {
		return nil, err
	}
	l.l1.Put(userID, orders)
	return orders, nil
}

// appendListResponse writes the list answer around already-encoded orders.
func appendListResponse(b []byte, q listQuery, orders []json.RawMessage) []byte {
	n := 64
	for _, o := range orders {
		n += len(o) + 1
	}
	if b == nil {
		b = make([]byte, 0, n)
	}
	b = append(b, `{"user_id":`...)
	b = appendInt(b, q.userID)
	b = append(b, `,"page":`...)
	b = appendInt(b, int64(q.page))
	b = append(b, `,"size":`...)
	b = appendInt(b, int64(q.size))
	b = append(b, `,"orders":[`...)
	for i, o := range orders {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o...)
	}
	return append(b, "]}"...)
}

// parseListQuery reads user_id, page, size and after from the headers or,
// for a direct NATS caller without the user_id header, from the JSON body.
func parseListQuery(req *runtime.Request) (listQuery, *runtime.Error) {
	q := listQuery{page: DefaultPage, size: DefaultSize}
	pageSet := false
	uid, ok := param(req, "user_id")
	switch {
	case ok:
		n, err := strconv.ParseInt(uid, 10, 64)
		if err != nil || n <= 0 {
			return q, runtime.BadRequest("user_id", "must be a positive 64-bit integer, got %q", uid)
		}
		q.userID = n
		vals := req.Query()
		for _, p := range []struct {
			name string
			dst  *int
		}{{"page", &q.page}, {"size", &q.size}} {
			if v, present := vals[p.name]; present {
				n, err := strconv.Atoi(v[0])
				if err != nil {
					return q, runtime.BadRequest(p.name, "must be an integer, got %q", v[0])
				}
				*p.dst = n
			}
		}
		_, pageSet = vals["page"]
		if v, present := vals["after"]; present {
			q.after = v[0]
		}
	case firstNonSpace(req.Data) >= 0:
		var in struct {
			UserID int64  `json:"user_id"`
			Page   *int   `json:"page"`
			Size   *int   `json:"size"`
			After  string `json:"after"`
		}
		if err := decodeStrict(req.Data, &in, []string{"user_id", "page", "size", "after"}); err != nil {
			return q, err
		}
		if in.UserID <= 0 {
			return q, runtime.BadRequest("user_id", "must be a positive 64-bit integer")
		}
		q.userID = in.UserID
		if in.Page != nil {
			q.page, pageSet = *in.Page, true
		}
		q.after = in.After
		if in.Size != nil {
			q.size = *in.Size
		}
	default:
		return q, runtime.BadRequest("user_id", "required")
	}
	if q.page < 1 {
		return q, runtime.BadRequest("page", "must be at least 1, got %d", q.page)
	}
	if q.size < 1 || q.size > MaxSize {
		return q, runtime.BadRequest("size", "must be 1 to %d, got %d", MaxSize, q.size)
	}
	switch {
	case q.after == "":
	case pageSet:
		return q, runtime.BadRequest("page", "cannot be combined with after (after names the last order of the previous page)")
	case !validOrderID(q.after):
		return q, runtime.BadRequest("after", "must be an order_id: 1 to %d characters of A-Z, a-z, 0-9, '_' or '-'", MaxOrderIDLen)
	}
	return q, nil
}

// param returns a route parameter and whether its header is present.
func param(req *runtime.Request, name string) (string, bool) {
	v, ok := req.Header[wire.HeaderParamPrefix+name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}
