package users

import (
	"net/http"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

var (
	_ runtime.HTTPDescriber = (*Get)(nil)
	_ runtime.HTTPDescriber = (*Put)(nil)
)

var pathUser = runtime.Param{Name: "user_id", In: "path", Schema: runtime.Schema(`{"type":"integer","minimum":1}`)}

// DescribeHTTP describes GET /v1/users/{user_id}.
func (*Get) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: `a user's profile, cache first; ETag: "<version>"`,
		Params:  []runtime.Param{pathUser},
		Responses: map[int]runtime.Schema{
			http.StatusOK:         runtime.SchemaOf(store.Profile{}),
			http.StatusBadRequest: nil,
			http.StatusForbidden:  nil,
			http.StatusNotFound:   nil,
		},
	}
}

// DescribeHTTP describes PUT /v1/users/{user_id}.
func (*Put) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "write a user's profile with optimistic locking",
		Request: runtime.SchemaOf(putBody{}),
		Params: []runtime.Param{pathUser, {Name: "If-Match", In: "header",
			Description: `"<version>" of the profile this write replaces; required once a profile exists`}},
		Responses: map[int]runtime.Schema{
			http.StatusOK:                   runtime.SchemaOf(store.Profile{}),
			http.StatusBadRequest:           nil,
			http.StatusForbidden:            nil,
			http.StatusPreconditionFailed:   nil,
			http.StatusPreconditionRequired: nil,
		},
	}
}
