package manifests

import "time"

// Autoscale is spec.autoscale: each runtime host moves the function's
// instances between Min and Max from one signal, the durable consumer's
// backlog for a stream trigger (TargetBacklog) or the calls in flight for
// a request trigger (TargetInFlight). The host wants
// ceil(signal / target) instances, kept inside Min..Max; it adds instances
// once that has held for two samples and removes them only after Cooldown
// passed without a sample wanting as many as run.
//
// With autoscale set, spec.replicas is the count a host starts with (Min
// when left out) and must lie inside Min..Max.
type Autoscale struct {
	// Min is the fewest instances per host, at least 1 (default 1):
	// replicas: 0 without autoscale is how a function is stopped.
	Min int `json:"min" yaml:"min"`
	// Max is the most instances per host, at most MaxReplicas. Required.
	Max int `json:"max" yaml:"max"`
	// TargetBacklog is the backlog (messages not yet delivered plus
	// delivered and not yet acked) one instance is meant to carry; stream
	// triggers only, and required for them.
	TargetBacklog int `json:"targetBacklog,omitempty" yaml:"targetBacklog,omitempty"`
	// TargetInFlight is the calls in flight on this host one instance is
	// meant to carry; request triggers only, and required for them.
	TargetInFlight int `json:"targetInFlight,omitempty" yaml:"targetInFlight,omitempty"`
	// Cooldown is how long the signal must stay below what the running
	// instances carry before one is removed (default 30s).
	Cooldown Duration `json:"cooldown,omitempty" yaml:"cooldown,omitempty"`
}

// Defaults and limits of spec.autoscale.
const (
	// DefaultAutoscaleMin is spec.autoscale.min when left out.
	DefaultAutoscaleMin = 1
	// DefaultCooldown is spec.autoscale.cooldown when left out.
	DefaultCooldown = 30 * time.Second
	// MinCooldown is the shortest spec.autoscale.cooldown.
	MinCooldown = time.Second
	// MaxCooldown is the longest spec.autoscale.cooldown.
	MaxCooldown = time.Hour
	// MaxTargetBacklog is the largest spec.autoscale.targetBacklog.
	MaxTargetBacklog = 10_000_000
)

// normalize fills the defaults of a written spec.autoscale.
func (a *Autoscale) normalize() {
	if a.Min == 0 {
		a.Min = DefaultAutoscaleMin
	}
	if a.Cooldown == 0 {
		a.Cooldown = Duration(DefaultCooldown)
	}
}

// autoscale checks spec.autoscale against the rest of the spec: bounds,
// the one target that fits the trigger, and spec.replicas as the starting
// count inside the bounds.
func (c *checks) autoscale(path string, s *Spec) {
	a := s.Autoscale
	if a == nil {
		return
	}
	if s.Handler == HandlerExternal {
		c.add(path, ErrInvalid, "not allowed with handler %q: surge runs no instances of it", HandlerExternal)
		return
	}
	minErr := intRange(path+".min", a.Min, 1, MaxReplicas)
	c.put(minErr)
	var maxErr error
	if a.Max == 0 {
		maxErr = fieldErr(path+".max", ErrRequired, "required")
	} else {
		maxErr = intRange(path+".max", a.Max, 1, MaxReplicas)
	}
	c.put(maxErr)
	bounds := minErr == nil && maxErr == nil
	if bounds && a.Min > a.Max {
		c.add(path+".max", ErrInvalid, "must be at least min (%d), got %d", a.Min, a.Max)
		bounds = false
	}
	switch {
	case s.Trigger.Stream != "" && s.Trigger.Subject == "":
		c.target(path+".targetBacklog", a.TargetBacklog, MaxTargetBacklog, "stream")
		if a.TargetInFlight != 0 {
			c.add(path+".targetInFlight", ErrInvalid, "only allowed with a request trigger (subject); a stream trigger scales on targetBacklog")
		}
	case s.Trigger.Subject != "" && s.Trigger.Stream == "":
		c.target(path+".targetInFlight", a.TargetInFlight, MaxConcurrency, "request")
		if a.TargetBacklog != 0 {
			c.add(path+".targetBacklog", ErrInvalid, "only allowed with a stream trigger; a request trigger scales on targetInFlight")
		}
	}
	c.put(durationRange(path+".cooldown", a.Cooldown, MinCooldown, MaxCooldown))
	if bounds && (s.Replicas < a.Min || s.Replicas > a.Max) {
		c.add("spec.replicas", ErrInvalid, "with autoscale, the starting count must be between min (%d) and max (%d), got %d", a.Min, a.Max, s.Replicas)
	}
}

// target checks the scaling target of a trigger kind: required, 1..hi.
func (c *checks) target(path string, v, hi int, kind string) {
	if v == 0 {
		c.add(path, ErrRequired, "required for a %s trigger", kind)
		return
	}
	c.put(intRange(path, v, 1, hi))
}
