package events

import (
	"net/http"

	"github.com/surgefn/surge/runtime"
)

var (
	_ runtime.HTTPDescriber = (*Ingest)(nil)
	_ runtime.HTTPDescriber = (*Stats)(nil)
)

// DescribeHTTP describes POST /v1/events: one event or an array of up to
// MaxEvents.
func (*Ingest) DescribeHTTP() runtime.HTTPShape {
	ev := runtime.SchemaOf(Event{})
	return runtime.HTTPShape{
		Summary: "track one behaviour event or an array of them",
		Request: runtime.OneOf(ev, runtime.ArrayOf(ev, 1, MaxEvents)),
		Responses: map[int]runtime.Schema{
			http.StatusAccepted:   runtime.SchemaOf(ingestResponse{}),
			http.StatusBadRequest: nil,
		},
	}
}

// DescribeHTTP describes GET /v1/items/{item_id}/stats.
func (*Stats) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{
		Summary: "an item's event counts, eventually consistent",
		Params:  []runtime.Param{{Name: "item_id", In: "path", Schema: runtime.Schema(`{"type":"string","minLength":1,"maxLength":64}`)}},
		Responses: map[int]runtime.Schema{
			http.StatusOK:         runtime.SchemaOf(StatsResponse{}),
			http.StatusBadRequest: nil,
		},
	}
}
