package gateway

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/manifests"
)

func fn(name, method, path string, async bool, stream string) manifests.Function {
	f := manifests.Function{APIVersion: manifests.APIVersion, Kind: manifests.KindFunction}
	f.Metadata.Name = name
	f.Spec.Handler = "echo"
	f.Spec.Timeout = manifests.Duration(time.Second)
	if stream != "" {
		f.Spec.Trigger.Stream = stream
		f.Spec.Trigger.Filter = strings.ToLower(stream) + ".submit"
	} else {
		f.Spec.Trigger.Subject = "fn." + name
	}
	if method != "" {
		f.Spec.HTTP = &manifests.HTTP{Method: method, Path: path, Async: async}
	}
	return f
}

func TestBuildAndMatch(t *testing.T) {
	table, errs := Build([]manifests.Function{
		fn("order-accept", "POST", "/v1/orders", false, ""),
		fn("order-get", "GET", "/v1/orders/{order_id}", false, ""),
		fn("order-stats", "GET", "/v1/orders/stats", false, ""),
		fn("order-list", "GET", "/v1/users/{user_id}/orders", false, ""),
		fn("item-stats", "GET", "/v1/items/{item_id}/stats", false, ""),
		fn("ingest", "POST", "/v1/ingest", false, "INGEST"),
		fn("mailer", "POST", "/v1/mail", true, ""),
		fn("no-route", "", "", false, ""),
		fn("zz-dup", "POST", "/v1/orders", false, ""),
	})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "already served by order-accept") {
		t.Errorf("errs = %v, want one conflict", errs)
	}
	tests := []struct {
		name        string
		method      string
		path        string
		wantFn      string
		wantParams  map[string]string
		wantAsync   bool
		wantAllowed []string
	}{
		{"static", "POST", "/v1/orders", "order-accept", nil, false, nil},
		{"param", "GET", "/v1/orders/01HX", "order-get", map[string]string{"order_id": "01HX"}, false, nil},
		{"literal beats param", "GET", "/v1/orders/stats", "order-stats", nil, false, nil},
		{"param in the middle", "GET", "/v1/users/42/orders", "order-list", map[string]string{"user_id": "42"}, false, nil},
		{"two segments after param", "GET", "/v1/items/A1/stats", "item-stats", map[string]string{"item_id": "A1"}, false, nil},
		{"escaped slash stays in the param", "GET", "/v1/items/a%2Fb/stats", "item-stats", map[string]string{"item_id": "a/b"}, false, nil},
		{"bad escape", "GET", "/v1/items/a%zz/stats", "", nil, false, nil},
		{"stream route is async", "POST", "/v1/ingest", "ingest", nil, true, nil},
		{"async route", "POST", "/v1/mail", "mailer", nil, true, nil},
		{"empty param", "GET", "/v1/orders/", "", nil, false, nil},
		{"too deep", "GET", "/v1/orders/1/x", "", nil, false, nil},
		{"too short", "GET", "/v1/users/42", "", nil, false, nil},
		{"unknown", "GET", "/nope", "", nil, false, nil},
		{"method not allowed static", "GET", "/v1/orders", "", nil, false, []string{"POST"}},
		{"method not allowed param", "DELETE", "/v1/orders/7", "", nil, false, []string{"GET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Params
			r, allowed := table.Match(tt.method, tt.path, &p)
			if tt.wantFn == "" {
				if r != nil {
					t.Fatalf("matched %s, want none", r.Target.Function)
				}
				if !slices.Equal(allowed, tt.wantAllowed) {
					t.Errorf("allowed = %v, want %v", allowed, tt.wantAllowed)
				}
				return
			}
			if r == nil {
				t.Fatalf("no match, want %s", tt.wantFn)
			}
			if r.Target.Function != tt.wantFn || r.Async != tt.wantAsync {
				t.Errorf("got %s async=%v, want %s async=%v", r.Target.Function, r.Async, tt.wantFn, tt.wantAsync)
			}
			for k, v := range tt.wantParams {
				if got := p.Get(k); got != v {
					t.Errorf("param %s = %q, want %q", k, got, v)
				}
			}
		})
	}
	tg, ok := table.Target("ingest")
	if !ok || tg.Publish != "ingest.submit" || !tg.Stream {
		t.Errorf("stream target = %+v", tg)
	}
	tg, ok = table.Target("no-route")
	if !ok || tg.Subject != "fn.no-route" || tg.Publish != "calls.no-route" {
		t.Errorf("request target = %+v", tg)
	}
}

func TestParamsBeyondFour(t *testing.T) {
	table, _ := Build([]manifests.Function{fn("deep", "GET", "/{a}/{b}/{c}/{d}/{e}/{f}", false, "")})
	var p Params
	r, _ := table.Match("GET", "/1/2/3/4/5/6", &p)
	if r == nil {
		t.Fatal("no match")
	}
	var got []string
	p.Each(func(k, v string) { got = append(got, k+"="+v) })
	if strings.Join(got, ",") != "a=1,b=2,c=3,d=4,e=5,f=6" {
		t.Errorf("params = %v", got)
	}
}

func BenchmarkMatch(b *testing.B) {
	var fns []manifests.Function
	for i := range 50 {
		name := "f" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		fns = append(fns, fn(name, "GET", "/v1/"+name+"/{id}", false, ""))
	}
	fns = append(fns, fn("order-accept", "POST", "/v1/orders", false, ""), fn("order-get", "GET", "/v1/orders/{order_id}", false, ""))
	table, _ := Build(fns)
	b.Run("static", func(b *testing.B) {
		b.ReportAllocs()
		var p Params
		for b.Loop() {
			if r, _ := table.Match("POST", "/v1/orders", &p); r == nil {
				b.Fatal("no match")
			}
		}
	})
	b.Run("param", func(b *testing.B) {
		b.ReportAllocs()
		var p Params
		for b.Loop() {
			if r, _ := table.Match("GET", "/v1/orders/01HXYZ", &p); r == nil {
				b.Fatal("no match")
			}
		}
	})
}
