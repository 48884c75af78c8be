package signin

import (
	"net/http"

	"github.com/surgefn/surge/runtime"
)

var _ runtime.HTTPDescriber = (*SignIn)(nil)

// DescribeHTTP describes POST /v1/signin.
func (*SignIn) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "sign the user in for today: exactly one record per user and day",
		Request: runtime.SchemaOf(request{}),
		Responses: map[int]runtime.Schema{
			http.StatusOK:         runtime.SchemaOf(Response{}),
			http.StatusBadRequest: nil,
			http.StatusForbidden:  nil,
		},
	}
}
