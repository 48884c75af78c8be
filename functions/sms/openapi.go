package sms

import (
	"net/http"

	"github.com/surgefn/surge/runtime"
)

var (
	_ runtime.HTTPDescriber = (*Send)(nil)
	_ runtime.HTTPDescriber = (*Status)(nil)
)

// DescribeHTTP describes POST /v1/sms; template is one of Templates.
func (*Send) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "queue a text message; sent with retries, dead-lettered after the last",
		Request: runtime.WithProperty(runtime.SchemaOf(sendRequest{}), "template",
			map[string]any{"type": "string", "enum": templateNames()}),
		Responses: map[int]runtime.Schema{
			http.StatusAccepted:        runtime.SchemaOf(sendResponse{}),
			http.StatusBadRequest:      nil,
			http.StatusTooManyRequests: nil,
		},
	}
}

// DescribeHTTP describes GET /v1/sms/{message_id}.
func (*Status) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "a text message's delivery status",
		Params:  []runtime.Param{{Name: "message_id", In: "path", Schema: runtime.Schema(`{"type":"string","minLength":1,"maxLength":64}`)}},
		Responses: map[int]runtime.Schema{
			http.StatusOK:       runtime.SchemaOf(statusResponse{}),
			http.StatusNotFound: nil,
		},
	}
}
