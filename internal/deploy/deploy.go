// Package deploy is the one way a manifest becomes a deployed function. The
// admin API (PUT /admin/functions/{name}, which `surge deploy` calls) and
// `surge up --manifests` both go through Deployer, so they accept and
// refuse the same manifests: the handler must exist and accept its config
// and trigger, and no two functions may hold one HTTP route.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/surgefn/surge/manifests"
)

// Sentinel errors of Deploy and DeployAll; test with errors.Is.
var (
	// ErrInvalid means the manifest was refused by its handler (unknown
	// handler, bad config, a trigger it cannot serve).
	ErrInvalid = errors.New("invalid manifest")
	// ErrRouteConflict means another function already holds the route.
	ErrRouteConflict = errors.New("route conflict")
	// ErrRegistry means the deployed functions could not be read, so the
	// route check could not be made.
	ErrRegistry = errors.New("cannot read deployed functions")
)

// RouteConflict says which two functions want one route. It matches
// ErrRouteConflict.
type RouteConflict struct {
	Route    string // METHOD PATH, as the refused manifest writes it
	Function string // the function refused
	Holder   string // the function that has the route
}

func (e *RouteConflict) Error() string {
	return fmt.Sprintf("route %s of function %s is already served by function %s", e.Route, e.Function, e.Holder)
}

// Is makes errors.Is(err, ErrRouteConflict) true.
func (e *RouteConflict) Is(target error) bool { return target == ErrRouteConflict }

// Registry is where deployed manifests live (*manifests.Registry).
type Registry interface {
	Put(ctx context.Context, fn manifests.Function) (manifests.Deployed, bool, error)
	List(ctx context.Context) ([]manifests.Deployed, error)
}

// Deployer checks manifests and stores them in the registry.
type Deployer struct {
	reg   Registry
	check func(*manifests.Function) error
}

// New returns a Deployer over reg. check is the handler check (the host's
// CheckHandler): it refuses an unknown handler, a config the handler
// rejects, or a trigger it cannot serve.
func New(reg Registry, check func(*manifests.Function) error) *Deployer {
	return &Deployer{reg: reg, check: check}
}

// Deploy checks fn (decoded and validated by manifests) and stores it; an
// unchanged manifest is a no-op that reports changed false.
func (d *Deployer) Deploy(ctx context.Context, fn manifests.Function) (manifests.Deployed, bool, error) {
	if err := d.Check(ctx, []manifests.Function{fn}); err != nil {
		return manifests.Deployed{}, false, err
	}
	return d.reg.Put(ctx, fn)
}

// DeployAll deploys fns as one set (the manifests a process starts with):
// every one is checked, against the deployed functions and against each
// other, before any is stored, so a bad set deploys nothing.
func (d *Deployer) DeployAll(ctx context.Context, fns []manifests.Function) ([]Result, error) {
	if err := d.Check(ctx, fns); err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(fns))
	for _, fn := range fns {
		dep, changed, err := d.reg.Put(ctx, fn)
		if err != nil {
			return out, fmt.Errorf("deploy %s: %w", fn.Metadata.Name, err)
		}
		out = append(out, Result{Deployed: dep, Changed: changed})
	}
	return out, nil
}

// Result is what DeployAll did with one manifest.
type Result struct {
	manifests.Deployed
	Changed bool
}

// Check reports every problem of deploying fns: each refused handler
// (ErrInvalid) and each route another function holds (*RouteConflict),
// whether that function is deployed or another of fns. A function being
// redeployed does not conflict with its own deployed version.
func (d *Deployer) Check(ctx context.Context, fns []manifests.Function) error {
	var errs []error
	names := make(map[string]bool, len(fns))
	for i := range fns {
		fn := &fns[i]
		if names[fn.Metadata.Name] {
			errs = append(errs, fmt.Errorf("%w: function %s is declared twice", ErrInvalid, fn.Metadata.Name))
		}
		names[fn.Metadata.Name] = true
		if err := d.check(fn); err != nil {
			errs = append(errs, fmt.Errorf("%w: function %s: spec.handler: %w", ErrInvalid, fn.Metadata.Name, err))
		}
	}
	owners := map[string]string{} // route key -> function
	if routed(fns) {
		deployed, err := d.reg.List(ctx)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("%w: %w", ErrRegistry, err))...)
		}
		for _, dep := range deployed {
			if h := dep.Function.Spec.HTTP; h != nil && !names[dep.Function.Metadata.Name] {
				owners[h.Key()] = dep.Function.Metadata.Name
			}
		}
	}
	// In name order, so the error for a clashing pair is the same every run.
	order := make([]int, len(fns))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return fns[order[a]].Metadata.Name < fns[order[b]].Metadata.Name })
	for _, i := range order {
		fn := &fns[i]
		h := fn.Spec.HTTP
		if h == nil {
			continue
		}
		if holder, ok := owners[h.Key()]; ok {
			errs = append(errs, &RouteConflict{Route: h.Route(), Function: fn.Metadata.Name, Holder: holder})
			continue
		}
		owners[h.Key()] = fn.Metadata.Name
	}
	return errors.Join(errs...)
}

func routed(fns []manifests.Function) bool {
	for i := range fns {
		if fns[i].Spec.HTTP != nil {
			return true
		}
	}
	return false
}
