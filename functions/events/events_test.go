package events

import (
	"strings"
	"testing"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

const ts = `"ts":"2025-03-01T10:00:00Z"`

func TestParse(t *testing.T) {
	many := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `{"user_id":1,"type":"view","item_id":"A1",` + ts + `}`
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	tests := []struct {
		name      string
		body      string
		wantN     int
		wantErr   bool
		wantField string
	}{
		{name: "single", body: `{"user_id":1,"type":"view","item_id":"A1",` + ts + `}`, wantN: 1},
		{name: "array", body: `[{"user_id":1,"type":"view","item_id":"A1",` + ts + `},{"user_id":9223372036854775807,"type":"buy","item_id":"商品-1",` + ts + `}]`, wantN: 2},
		{name: "fractional seconds and offset", body: `{"user_id":1,"type":"cart","item_id":"A1","ts":"2025-03-01T10:00:00.123+08:00"}`, wantN: 1},
		{name: "whitespace around", body: " \n" + many(2) + "\n", wantN: 2},
		{name: "1000 events", body: many(1000), wantN: 1000},
		{name: "64-char item id", body: `{"user_id":1,"type":"click","item_id":"` + strings.Repeat("é", 64) + `",` + ts + `}`, wantN: 1},

		{name: "1001 events", body: many(1001), wantErr: true},
		{name: "empty array", body: `[]`, wantErr: true},
		{name: "empty body", body: ``, wantErr: true},
		{name: "null", body: `null`, wantErr: true, wantField: "user_id"},
		{name: "user_id zero", body: `{"user_id":0,"type":"view","item_id":"A1",` + ts + `}`, wantErr: true, wantField: "user_id"},
		{name: "user_id missing", body: `{"type":"view","item_id":"A1",` + ts + `}`, wantErr: true, wantField: "user_id"},
		{name: "user_id negative", body: `{"user_id":-5,"type":"view","item_id":"A1",` + ts + `}`, wantErr: true, wantField: "user_id"},
		{name: "user_id fraction", body: `{"user_id":1.5,"type":"view","item_id":"A1",` + ts + `}`, wantErr: true, wantField: "user_id"},
		{name: "user_id string", body: `{"user_id":"1","type":"view","item_id":"A1",` + ts + `}`, wantErr: true, wantField: "user_id"},
		{name: "user_id overflow", body: `{"user_id":9223372036854775808,"type":"view","item_id":"A1",` + ts + `}`, wantErr: true, wantField: "user_id"},
		{name: "type unknown", body: `{"user_id":1,"type":"like","item_id":"A1",` + ts + `}`, wantErr: true, wantField: "type"},
		{name: "type case", body: `{"user_id":1,"type":"VIEW","item_id":"A1",` + ts + `}`, wantErr: true, wantField: "type"},
		{name: "type missing", body: `{"user_id":1,"item_id":"A1",` + ts + `}`, wantErr: true, wantField: "type"},
		{name: "item_id empty", body: `{"user_id":1,"type":"view","item_id":"",` + ts + `}`, wantErr: true, wantField: "item_id"},
		{name: "item_id too long", body: `{"user_id":1,"type":"view","item_id":"` + strings.Repeat("a", 65) + `",` + ts + `}`, wantErr: true, wantField: "item_id"},
		{name: "item_id control char", body: `{"user_id":1,"type":"view","item_id":"a\nb",` + ts + `}`, wantErr: true, wantField: "item_id"},
		{name: "ts missing", body: `{"user_id":1,"type":"view","item_id":"A1"}`, wantErr: true, wantField: "ts"},
		{name: "ts not RFC3339", body: `{"user_id":1,"type":"view","item_id":"A1","ts":"2025-03-01 10:00:00"}`, wantErr: true, wantField: "ts"},
		{name: "ts unix number", body: `{"user_id":1,"type":"view","item_id":"A1","ts":1700000000}`, wantErr: true, wantField: "ts"},
		{name: "unknown field", body: `{"user_id":1,"type":"view","item_id":"A1",` + ts + `,"price":3}`, wantErr: true, wantField: "price"},
		{name: "malformed", body: `{"user_id":1,`, wantErr: true},
		{name: "trailing data", body: `{"user_id":1,"type":"view","item_id":"A1",` + ts + `} x`, wantErr: true},
		{name: "string body", body: `"view"`, wantErr: true},
		{name: "array index in field", body: `[{"user_id":1,"type":"view","item_id":"A1",` + ts + `},{"user_id":1,"type":"view","item_id":"A1",` + ts + `},` +
			`{"user_id":1,"type":"view","item_id":"A1",` + ts + `},{"user_id":1,"type":"nap","item_id":"A1",` + ts + `}]`, wantErr: true, wantField: "[3].type"},
		{name: "array unknown field", body: `[{"user_id":1,"type":"view","item_id":"A1",` + ts + `,"x":1}]`, wantErr: true, wantField: "[0].x"},
		{name: "array wrong type", body: `[{"user_id":"1","type":"view","item_id":"A1",` + ts + `}]`, wantErr: true, wantField: "[0].user_id"},
		{name: "array of non-objects", body: `[1]`, wantErr: true, wantField: "[0]"},
		{name: "nested array", body: `[[{"user_id":1}]]`, wantErr: true, wantField: "[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Parse([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				e := runtime.AsError(err)
				if e.Status != 400 {
					t.Errorf("status %d, want 400", e.Status)
				}
				if tt.wantField != "" && !strings.HasPrefix(e.Msg, tt.wantField+": ") {
					t.Errorf("message %q does not name field %q", e.Msg, tt.wantField)
				}
				return
			}
			if len(evs) != tt.wantN {
				t.Errorf("%d events, want %d", len(evs), tt.wantN)
			}
		})
	}
}

func TestCount(t *testing.T) {
	evs := []Event{
		{1, TypeView, "A", ""}, {2, TypeView, "A", ""}, {1, TypeClick, "A", ""},
		{1, TypeCart, "B", ""}, {1, TypeBuy, "B", ""}, {3, TypeBuy, "B", ""},
	}
	got := map[string]store.Counts{"B": {View: 10}}
	Count(evs, got)
	want := map[string]store.Counts{"A": {View: 2, Click: 1}, "B": {View: 10, Cart: 1, Buy: 2}}
	if len(got) != len(want) || got["A"] != want["A"] || got["B"] != want["B"] {
		t.Errorf("Count = %v, want %v", got, want)
	}
}

func TestStatsKey(t *testing.T) {
	tests := []struct{ id, want string }{
		{"A1", "i.A1"},
		{"sku-42_x=", "i.sku-42_x="},
		{"a.b", "x.612e62"},
		{"a/b", "x.612f62"},
		{"..", "x.2e2e"},
		{"商品", "x.e59586e59381"},
		{"has space", "x.686173207370616365"},
		{"*", "x.2a"},
		{">", "x.3e"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		if got := StatsKey(tt.id); got != tt.want {
			t.Errorf("StatsKey(%q) = %q, want %q", tt.id, got, tt.want)
		}
		if other, dup := seen[tt.want]; dup {
			t.Errorf("%q and %q share key %q", tt.id, other, tt.want)
		}
		seen[tt.want] = tt.id
	}
	// A plain id that looks like hex cannot collide with an escaped one.
	if StatsKey("2e2e") == StatsKey("..") {
		t.Error("plain and escaped keys collide")
	}
}
