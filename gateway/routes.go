package gateway

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/surgefn/surge/manifests"
)

// Target is where calls for one function go.
type Target struct {
	Function string
	// Handler is the function's spec.handler: a built-in module id, or
	// "external".
	Handler string
	// Subject is the request subject (request triggers).
	Subject string
	// Publish is the subject an async call is published to: calls.<name>
	// for request triggers, the literal filter for stream triggers.
	Publish string
	// Stream is true for stream-triggered functions: every call is async.
	Stream  bool
	Timeout time.Duration
	// Revision is the manifest revision the target was built from.
	Revision string
	// Auth is the function's spec.http.auth, checked on its route and on
	// calls by name ("" for a function without a route: none).
	Auth string

	// Slots is how many calls one runtime host runs at once
	// (spec.concurrency x spec.replicas; request triggers): where the
	// adaptive limit starts.
	Slots int

	// limit is the function's adaptive in-flight limit (sync targets of
	// a gateway's table; nil in a table built alone, which limits nothing).
	limit *limiter
}

// Route is one HTTP route of a deployed function.
type Route struct {
	Method  string
	Pattern string
	// Name is "METHOD pattern", the route's label in metrics.
	Name   string
	Async  bool
	Target *Target

	segs []string // pattern segments; "" marks a parameter
	keys []string // parameter names, in order
}

// Params holds the path parameters of a match without allocating for up
// to four of them.
type Params struct {
	n    int
	keys [4]string
	vals [4]string
	more [][2]string
}

func (p *Params) add(k, v string) {
	if p.n < len(p.keys) {
		p.keys[p.n], p.vals[p.n] = k, v
	} else {
		p.more = append(p.more, [2]string{k, v})
	}
	p.n++
}

// Each calls fn for every parameter.
func (p *Params) Each(fn func(k, v string)) {
	for i := 0; i < p.n && i < len(p.keys); i++ {
		fn(p.keys[i], p.vals[i])
	}
	for _, kv := range p.more {
		fn(kv[0], kv[1])
	}
}

// Get returns the parameter k ("" when absent).
func (p *Params) Get(k string) string {
	v := ""
	p.Each(func(key, val string) {
		if key == k {
			v = val
		}
	})
	return v
}

// Table is an immutable routing table built from the deployed manifests;
// the gateway swaps in a new one on every deploy, since Echo cannot remove
// routes.
type Table struct {
	static  map[skey]*Route     // by method and path
	methods map[string][]string // static path -> its methods, for 405
	dynamic map[dkey][]*Route   // by method and segment count, most specific first
	targets map[string]*Target  // by function name

	// openapi is the table's OpenAPI document (openAPIDoc), set by the
	// gateway before it puts the table in use.
	openapi []byte
}

// Build makes the table for fns. A route whose method and path another
// function already holds is left out and reported; the function itself is
// still callable by name.
func Build(fns []manifests.Function) (*Table, []error) {
	t := &Table{
		static:  map[skey]*Route{},
		methods: map[string][]string{},
		dynamic: map[dkey][]*Route{},
		targets: map[string]*Target{},
	}
	sorted := append([]manifests.Function(nil), fns...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Metadata.Name < sorted[j].Metadata.Name })
	owner := map[string]string{}
	var errs []error
	for i := range sorted {
		fn := &sorted[i]
		tg := targetOf(fn)
		t.targets[fn.Metadata.Name] = tg
		if fn.Spec.HTTP == nil {
			continue
		}
		if tg.Stream && tg.Publish == "" {
			errs = append(errs, fmt.Errorf("function %s: route %s %s needs a literal trigger.filter to publish to",
				fn.Metadata.Name, fn.Spec.HTTP.Method, fn.Spec.HTTP.Path))
			continue
		}
		r := compile(fn.Spec.HTTP.Method, fn.Spec.HTTP.Path)
		r.Async = fn.Spec.HTTP.Async || tg.Stream
		r.Target = tg
		key := fn.Spec.HTTP.Key()
		if prev, dup := owner[key]; dup {
			errs = append(errs, fmt.Errorf("function %s: route %s %s is already served by %s",
				fn.Metadata.Name, r.Method, r.Pattern, prev))
			continue
		}
		owner[key] = fn.Metadata.Name
		if len(r.keys) == 0 {
			t.static[skey{r.Method, r.Pattern}] = r
			t.methods[r.Pattern] = append(t.methods[r.Pattern], r.Method)
			continue
		}
		dk := dkey{r.Method, len(r.segs)}
		t.dynamic[dk] = append(t.dynamic[dk], r)
	}
	for m := range t.dynamic {
		rs := t.dynamic[m]
		// Literal segments beat parameters: /v1/orders/stats before /v1/orders/{id}.
		sort.SliceStable(rs, func(i, j int) bool { return specificity(rs[i]) > specificity(rs[j]) })
	}
	return t, errs
}

func targetOf(fn *manifests.Function) *Target {
	tg := &Target{Function: fn.Metadata.Name, Handler: fn.Spec.Handler, Timeout: fn.Spec.Timeout.Std(), Revision: fn.Revision()}
	if fn.Spec.HTTP != nil {
		tg.Auth = fn.Spec.HTTP.Auth
	} else {
		// A function without a route is internal: a stream consumer fed
		// by another function's route (order-persist behind order-accept)
		// or one reached over NATS only. Calling it by name over HTTP
		// would skip the feeding route's auth and checks, so it takes the
		// admin token.
		tg.Auth = manifests.AuthAdmin
	}
	if tg.Timeout == 0 {
		tg.Timeout = manifests.DefaultTimeout
	}
	if fn.IsStream() {
		tg.Stream = true
		if f := fn.Spec.Trigger.Filter; f != "" && !strings.ContainsAny(f, "*>") {
			tg.Publish = f
		}
		return tg
	}
	tg.Subject = fn.Spec.Trigger.Subject
	tg.Slots = max(fn.Spec.Concurrency, 1) * max(fn.Spec.Replicas, 1)
	tg.Publish = "calls." + fn.Metadata.Name
	return tg
}

func compile(method, pattern string) *Route {
	r := &Route{Method: strings.ToUpper(method), Pattern: pattern}
	r.Name = r.Method + " " + pattern
	for _, s := range strings.Split(strings.Trim(pattern, "/"), "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			r.keys = append(r.keys, s[1:len(s)-1])
			r.segs = append(r.segs, "")
			continue
		}
		r.segs = append(r.segs, s)
	}
	return r
}

func specificity(r *Route) int {
	n := 0
	for _, s := range r.segs {
		if s != "" {
			n++
		}
	}
	return n*100 + len(r.segs)
}

// Match finds the route for method and path. When the path exists under
// other methods only, allowed lists them (for a 405).
func (t *Table) Match(method, path string, p *Params) (r *Route, allowed []string) {
	if r := t.static[skey{method, path}]; r != nil {
		return r, nil
	}
	var segs [maxSegs]string
	n, ok := splitPath(path, &segs)
	if !ok {
		return nil, nil
	}
	for _, r := range t.dynamic[dkey{method, n}] {
		if matchSegs(r, segs[:n], p) {
			return r, nil
		}
	}
	// 405 or 404: is there any route with this path under another method?
	for k, rs := range t.dynamic {
		if k.method == method || k.nsegs != n {
			continue
		}
		for _, r := range rs {
			var scratch Params
			if matchSegs(r, segs[:n], &scratch) {
				allowed = append(allowed, k.method)
				break
			}
		}
	}
	for _, m := range t.methods[path] {
		if m != method {
			allowed = append(allowed, m)
		}
	}
	sort.Strings(allowed)
	return nil, allowed
}

type skey struct{ method, path string }

type dkey struct {
	method string
	nsegs  int
}

// maxSegs bounds the path depth a parameter route can have.
const maxSegs = 16

// splitPath splits path into segments without allocating; ok is false when
// it is deeper than maxSegs.
func splitPath(path string, out *[maxSegs]string) (n int, ok bool) {
	rest := strings.TrimPrefix(path, "/")
	for {
		if n == maxSegs {
			return n, false
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			out[n] = rest
			return n + 1, true
		}
		out[n] = rest[:i]
		n++
		rest = rest[i+1:]
	}
}

// matchSegs checks the literal segments first, so a miss costs a few
// string compares, then collects the parameters.
func matchSegs(r *Route, segs []string, p *Params) bool {
	if len(segs) != len(r.segs) {
		return false
	}
	for i, s := range r.segs {
		if s != "" && s != segs[i] {
			return false
		}
		if s == "" && segs[i] == "" {
			return false
		}
	}
	p.n = 0
	p.more = p.more[:0]
	ki := 0
	for i, s := range r.segs {
		if s == "" {
			v := segs[i]
			if strings.IndexByte(v, '%') >= 0 {
				u, err := url.PathUnescape(v)
				if err != nil {
					return false
				}
				v = u
			}
			p.add(r.keys[ki], v)
			ki++
		}
	}
	return true
}

// Target returns the target of function name.
func (t *Table) Target(name string) (*Target, bool) {
	tg, ok := t.targets[name]
	return tg, ok
}

// Routes lists every route, for logs and `surge ls`.
func (t *Table) Routes() []*Route {
	var out []*Route
	for _, r := range t.static {
		out = append(out, r)
	}
	for _, rs := range t.dynamic {
		out = append(out, rs...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pattern != out[j].Pattern {
			return out[i].Pattern < out[j].Pattern
		}
		return out[i].Method < out[j].Method
	})
	return out
}
