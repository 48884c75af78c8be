package orders

import (
	"net/http"
	"strconv"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

var (
	_ runtime.HTTPDescriber = (*Accept)(nil)
	_ runtime.HTTPDescriber = (*Get)(nil)
	_ runtime.HTTPDescriber = (*List)(nil)
)

// accepted is the 202 body of POST /v1/orders, which acceptedResponse
// encodes by hand on the fast path.
type accepted struct {
	OrderID    string `json:"order_id"`
	Status     string `json:"status" jsonschema:"enum=accepted"`
	TotalCents int64  `json:"total_cents"`
}

var orderIDSchema = runtime.Schema(`{"type":"string","pattern":"^[A-Za-z0-9_-]{1,` + strconv.Itoa(MaxOrderIDLen) + `}$"}`)

// CurrencySchema is the schema of a currency field: one of Currencies.
func CurrencySchema() map[string]any {
	return map[string]any{"type": "string", "enum": Currencies(), "description": "an upper-case ISO 4217 code such as CNY, USD or EUR"}
}

// DescribeHTTP describes POST /v1/orders.
func (*Accept) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "accept an order: durable in JetStream before the 202",
		Request: runtime.WithProperty(runtime.SchemaOf(orderInput{}), "currency", CurrencySchema()),
		Params: []runtime.Param{{Name: runtime.HeaderIdempotencyKey, In: "header",
			Description: "the same key with the same body returns the same answer and creates one order",
			Schema:      runtime.Schema(`{"type":"string","minLength":1,"maxLength":` + strconv.Itoa(MaxIdempotencyKeyLen) + `}`)}},
		Responses: map[int]runtime.Schema{
			http.StatusAccepted:            runtime.SchemaOf(accepted{}),
			http.StatusBadRequest:          nil,
			http.StatusForbidden:           nil,
			http.StatusUnprocessableEntity: nil,
		},
	}
}

// DescribeHTTP describes GET /v1/orders/{order_id}.
func (*Get) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "a stored order",
		Params:  []runtime.Param{{Name: "order_id", In: "path", Schema: orderIDSchema}},
		Responses: map[int]runtime.Schema{
			http.StatusOK:         runtime.SchemaOf(store.Order{}),
			http.StatusBadRequest: nil,
			http.StatusNotFound:   nil,
		},
	}
}

// DescribeHTTP describes GET /v1/users/{user_id}/orders.
func (*List) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "a page of a user's orders, newest first",
		Params: []runtime.Param{
			{Name: "user_id", In: "path", Schema: runtime.Schema(`{"type":"integer","minimum":1}`)},
			{Name: "page", In: "query", Schema: runtime.Schema(`{"type":"integer","minimum":1,"default":` + strconv.Itoa(DefaultPage) + `}`)},
			{Name: "size", In: "query", Schema: runtime.Schema(`{"type":"integer","minimum":1,"maximum":` + strconv.Itoa(MaxSize) + `,"default":` + strconv.Itoa(DefaultSize) + `}`)},
			{Name: "after", In: "query", Schema: runtime.Schema(`{"type":"string","maxLength":` + strconv.Itoa(MaxOrderIDLen) + `,"pattern":"^[A-Za-z0-9_-]*$","description":"the last order_id of the previous page, instead of page: keyset paging; empty: the first page"}`)},
		},
		Responses: map[int]runtime.Schema{
			http.StatusOK:         runtime.SchemaOf(listResponse{}),
			http.StatusBadRequest: nil,
			http.StatusForbidden:  nil,
		},
	}
}
