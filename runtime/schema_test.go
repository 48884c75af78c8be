package runtime_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime"
)

type schemaInner struct {
	At time.Time `json:"at"`
}

type schemaEmbedded struct {
	Shared string `json:"shared"`
}

type schemaAll struct {
	schemaEmbedded
	ID       int64             `json:"id" jsonschema:"minimum=1"`
	Kind     string            `json:"kind" jsonschema:"enum=a|b"`
	Count    uint              `json:"count,omitempty"`
	Ratio    float64           `json:"ratio"`
	Flag     *bool             `json:"flag"`
	Name     *string           `json:"name" jsonschema:"required;minLength=1;maxLength=8"`
	Tags     []string          `json:"tags" jsonschema:"nullable;maxItems=3"`
	Attrs    map[string]string `json:"attrs" jsonschema:"optional"`
	Inner    schemaInner       `json:"inner"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	Phone    string            `json:"phone" jsonschema:"pattern=^\\+[0-9]+$;description=a number"`
	Skipped  string            `json:"-"`
	internal int
}

func TestSchemaOf(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{name: "string", v: "", want: `{"type":"string"}`},
		{name: "time", v: time.Time{}, want: `{"format":"date-time","type":"string"}`},
		{name: "slice of ints", v: []int{}, want: `{"items":{"type":"integer"},"type":"array"}`},
		{name: "bytes", v: []byte{}, want: `{"contentEncoding":"base64","type":"string"}`},
		{name: "struct", v: schemaAll{}, want: `{"additionalProperties":false,"properties":{` +
			`"attrs":{"additionalProperties":{"type":"string"},"type":"object"},` +
			`"count":{"minimum":0,"type":"integer"},` +
			`"flag":{"type":"boolean"},` +
			`"id":{"minimum":1,"type":"integer"},` +
			`"inner":{"additionalProperties":false,"properties":{"at":{"format":"date-time","type":"string"}},"required":["at"],"type":"object"},` +
			`"kind":{"enum":["a","b"],"type":"string"},` +
			`"name":{"maxLength":8,"minLength":1,"type":"string"},` +
			`"phone":{"description":"a number","pattern":"^\\+[0-9]+$","type":"string"},` +
			`"ratio":{"type":"number"},` +
			`"raw":{},` +
			`"shared":{"type":"string"},` +
			`"tags":{"items":{"type":"string"},"maxItems":3,"type":["array","null"]}},` +
			`"required":["shared","id","kind","ratio","name","tags","inner","phone"],"type":"object"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(runtime.SchemaOf(tt.v)); got != tt.want {
				t.Errorf("SchemaOf =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestSchemaOfRefusesBadTags(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{name: "unknown key", v: struct {
			A int `json:"a" jsonschema:"minimun=1"`
		}{}, want: `unknown jsonschema tag key "minimun"`},
		{name: "not a number", v: struct {
			A int `json:"a" jsonschema:"maximum=ten"`
		}{}, want: "is not an integer"},
		{name: "no value", v: struct {
			A string `json:"a" jsonschema:"pattern="`
		}{}, want: "needs a value"},
		{name: "channel", v: struct {
			C chan int `json:"c"`
		}{}, want: "no JSON Schema for chan int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.want) {
					t.Errorf("panic %v, want one with %q", r, tt.want)
				}
			}()
			runtime.SchemaOf(tt.v)
		})
	}
}

func TestCombinators(t *testing.T) {
	s := runtime.Schema(`{"type":"integer"}`)
	if got, want := string(runtime.OneOf(s, runtime.ArrayOf(s, 1, 10))),
		`{"oneOf":[{"type":"integer"},{"items":{"type":"integer"},"maxItems":10,"minItems":1,"type":"array"}]}`; got != want {
		t.Errorf("OneOf = %s, want %s", got, want)
	}
	if got, want := string(runtime.ArrayOf(s, 0, 0)), `{"items":{"type":"integer"},"minItems":0,"type":"array"}`; got != want {
		t.Errorf("ArrayOf without a bound = %s, want %s", got, want)
	}
}

type described struct{}

func (*described) Handle(context.Context, *runtime.Request) error { return nil }

func (*described) DescribeHTTP() runtime.HTTPShape {
	return runtime.HTTPShape{Summary: "described", Request: runtime.SchemaOf(schemaInner{})}
}

type undescribed struct{}

func (*undescribed) Handle(context.Context, *runtime.Request) error { return nil }

func init() {
	runtime.Register(runtime.Module{ID: "test.schema.described", New: func() any { return new(described) }})
	runtime.Register(runtime.Module{ID: "test.schema.undescribed", New: func() any { return new(undescribed) }})
}

func TestDescribeHTTP(t *testing.T) {
	tests := []struct {
		id          string
		wantOK      bool
		wantSummary string
	}{
		{id: "test.schema.described", wantOK: true, wantSummary: "described"},
		{id: "test.schema.undescribed"},
		{id: "test.schema.unregistered"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			shape, ok := runtime.DescribeHTTP(tt.id)
			if ok != tt.wantOK || shape.Summary != tt.wantSummary {
				t.Errorf("DescribeHTTP = %+v, %v; want summary %q, %v", shape, ok, tt.wantSummary, tt.wantOK)
			}
		})
	}
}

func TestWithProperty(t *testing.T) {
	got := string(runtime.WithProperty(runtime.SchemaOf(schemaInner{}), "at", map[string]any{"enum": []string{"x"}}))
	if want := `{"additionalProperties":false,"properties":{"at":{"enum":["x"]}},"required":["at"],"type":"object"}`; got != want {
		t.Errorf("WithProperty = %s, want %s", got, want)
	}
}
