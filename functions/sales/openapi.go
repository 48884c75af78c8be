package sales

import (
	"net/http"
	"strconv"

	"github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/runtime"
)

var (
	_ runtime.HTTPDescriber = (*Put)(nil)
	_ runtime.HTTPDescriber = (*Get)(nil)
	_ runtime.HTTPDescriber = (*Order)(nil)
)

// saleParam is the {sale_id} of the routes, as saleIDPattern checks it.
var saleParam = runtime.Param{Name: "sale_id", In: "path",
	Schema: runtime.Schema(`{"type":"string","pattern":"` + saleIDPattern.String() + `"}`)}

// DescribeHTTP describes PUT /v1/sales/{sale_id}.
func (*Put) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "create or update a flash sale",
		Request: runtime.WithProperty(runtime.SchemaOf(saleInput{}), "currency", orders.CurrencySchema()),
		Params:  []runtime.Param{saleParam},
		Responses: map[int]runtime.Schema{
			http.StatusOK:         runtime.SchemaOf(Sale{}),
			http.StatusBadRequest: nil,
			http.StatusConflict:   nil,
		},
	}
}

// DescribeHTTP describes GET /v1/sales/{sale_id}.
func (*Get) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "a sale's stock and status",
		Params:  []runtime.Param{saleParam},
		Responses: map[int]runtime.Schema{
			http.StatusOK:         runtime.SchemaOf(View{}),
			http.StatusBadRequest: nil,
			http.StatusNotFound:   nil,
		},
	}
}

// DescribeHTTP describes POST /v1/sales/{sale_id}/orders.
func (*Order) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "buy in a flash sale: never more units accepted than the stock",
		Request: runtime.SchemaOf(orderInput{}),
		Params: []runtime.Param{saleParam, {Name: runtime.HeaderIdempotencyKey, In: "header",
			Schema: runtime.Schema(`{"type":"string","maxLength":` + strconv.Itoa(MaxIdempotencyKeyLen) + `}`)}},
		Responses: map[int]runtime.Schema{
			http.StatusAccepted:        runtime.SchemaOf(Accepted{}),
			http.StatusBadRequest:      nil,
			http.StatusForbidden:       nil,
			http.StatusNotFound:        nil,
			http.StatusConflict:        nil,
			http.StatusTooManyRequests: nil,
		},
	}
}
