package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/surgefn/surge/manifests"
)

// memRegistry is a Registry in memory.
type memRegistry struct {
	fns  map[string]manifests.Function
	puts int
}

func (m *memRegistry) Put(_ context.Context, fn manifests.Function) (manifests.Deployed, bool, error) {
	m.puts++
	cur, ok := m.fns[fn.Metadata.Name]
	changed := !ok || cur.Revision() != fn.Revision()
	m.fns[fn.Metadata.Name] = fn
	return manifests.Deployed{Function: fn, Seq: uint64(m.puts)}, changed, nil
}

func (m *memRegistry) List(context.Context) ([]manifests.Deployed, error) {
	out := make([]manifests.Deployed, 0, len(m.fns))
	for _, fn := range m.fns {
		out = append(out, manifests.Deployed{Function: fn})
	}
	return out, nil
}

func fn(name, method, path string) manifests.Function {
	f := manifests.Function{APIVersion: "surge/v1", Kind: "Function"}
	f.Metadata.Name = name
	f.Spec.Handler = "echo"
	f.Spec.Trigger.Subject = "fn." + name
	if path != "" {
		f.Spec.HTTP = &manifests.HTTP{Method: method, Path: path}
	}
	return f
}

func noCheck(*manifests.Function) error { return nil }

func TestDeploy(t *testing.T) {
	badHandler := errors.New(`unknown handler "nope"`)
	check := func(f *manifests.Function) error {
		if f.Spec.Handler == "nope" {
			return badHandler
		}
		return nil
	}
	tests := []struct {
		name      string
		deployed  []manifests.Function
		fn        manifests.Function
		wantErr   error
		wantMsg   []string
		wantStore bool
	}{
		{"new route", nil, fn("a", "POST", "/v1/a"), nil, nil, true},
		{"same route other function", []manifests.Function{fn("a", "POST", "/v1/a")}, fn("b", "POST", "/v1/a"),
			ErrRouteConflict, []string{"POST /v1/a", "function b", "function a"}, false},
		{"same shape other parameter name", []manifests.Function{fn("a", "GET", "/v1/x/{id}")}, fn("b", "get", "/v1/x/{key}"),
			ErrRouteConflict, []string{"GET /v1/x/{key}", "function a"}, false},
		{"same path other method", []manifests.Function{fn("a", "POST", "/v1/a")}, fn("b", "GET", "/v1/a"), nil, nil, true},
		{"redeploy of the holder", []manifests.Function{fn("a", "POST", "/v1/a")}, fn("a", "POST", "/v1/a"), nil, nil, true},
		{"no route", []manifests.Function{fn("a", "POST", "/v1/a")}, fn("b", "", ""), nil, nil, true},
		{"bad handler", nil, func() manifests.Function { f := fn("a", "POST", "/v1/a"); f.Spec.Handler = "nope"; return f }(),
			ErrInvalid, []string{"function a", "spec.handler", `unknown handler "nope"`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := &memRegistry{fns: map[string]manifests.Function{}}
			for _, f := range tt.deployed {
				reg.fns[f.Metadata.Name] = f
			}
			_, _, err := New(reg, check).Deploy(context.Background(), tt.fn)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Deploy error = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if stored := reg.puts == 1; stored != tt.wantStore {
				t.Errorf("stored = %v, want %v", stored, tt.wantStore)
			}
		})
	}
}

func TestDeployAllRefusesTheWholeSet(t *testing.T) {
	reg := &memRegistry{fns: map[string]manifests.Function{}}
	d := New(reg, noCheck)
	set := []manifests.Function{fn("b", "POST", "/v1/orders"), fn("a", "POST", "/v1/orders"), fn("c", "GET", "/v1/c")}
	_, err := d.DeployAll(context.Background(), set)
	var rc *RouteConflict
	if !errors.As(err, &rc) {
		t.Fatalf("DeployAll error = %v, want a RouteConflict", err)
	}
	// Names in order: a takes the route, b is the one refused.
	if rc.Function != "b" || rc.Holder != "a" || rc.Route != "POST /v1/orders" {
		t.Errorf("conflict = %+v", rc)
	}
	if reg.puts != 0 {
		t.Errorf("%d manifests stored from a refused set", reg.puts)
	}

	res, err := d.DeployAll(context.Background(), set[1:])
	if err != nil || len(res) != 2 || !res[0].Changed {
		t.Fatalf("DeployAll = %+v, %v", res, err)
	}
	res, err = d.DeployAll(context.Background(), set[1:])
	if err != nil || res[0].Changed || res[1].Changed {
		t.Errorf("redeploying the same set changed something: %+v, %v", res, err)
	}
	if _, err := d.DeployAll(context.Background(), []manifests.Function{fn("a", "", ""), fn("a", "", "")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a set naming one function twice: %v", err)
	}
}
