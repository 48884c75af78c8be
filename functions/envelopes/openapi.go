package envelopes

import (
	"net/http"

	"github.com/surgefn/surge/runtime"
)

var (
	_ runtime.HTTPDescriber = (*Create)(nil)
	_ runtime.HTTPDescriber = (*Grab)(nil)
	_ runtime.HTTPDescriber = (*Get)(nil)
)

// idParam is the {envelope_id} of the routes, as idPattern checks it.
var idParam = runtime.Param{Name: "envelope_id", In: "path",
	Schema: runtime.Schema(`{"type":"string","pattern":"` + idPattern.String() + `"}`)}

// DescribeHTTP describes POST /v1/envelopes.
func (*Create) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "create a red envelope of count shares",
		Request: runtime.SchemaOf(createInput{}),
		Responses: map[int]runtime.Schema{
			http.StatusCreated:    runtime.SchemaOf(createResponse{}),
			http.StatusBadRequest: nil,
			http.StatusForbidden:  nil,
		},
	}
}

// DescribeHTTP describes POST /v1/envelopes/{envelope_id}/grab.
func (*Grab) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "grab one share of an envelope (the same share again for the same user)",
		Request: runtime.SchemaOf(grabInput{}),
		Params:  []runtime.Param{idParam},
		Responses: map[int]runtime.Schema{
			http.StatusOK:         runtime.SchemaOf(GrabResponse{}),
			http.StatusBadRequest: nil,
			http.StatusForbidden:  nil,
			http.StatusNotFound:   nil,
			http.StatusGone:       nil,
		},
	}
}

// DescribeHTTP describes GET /v1/envelopes/{envelope_id}.
func (*Get) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "an envelope and its grabs",
		Params:  []runtime.Param{idParam},
		Responses: map[int]runtime.Schema{
			http.StatusOK:         runtime.SchemaOf(GetResponse{}),
			http.StatusBadRequest: nil,
			http.StatusNotFound:   nil,
		},
	}
}
