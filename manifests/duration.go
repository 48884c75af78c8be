package manifests

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// UnmarshalYAML reads a duration string such as "250ms" or "2s". Like the
// JSON form, a bare number is rejected: "timeout: 2" has no unit and would
// otherwise silently mean two nanoseconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, ferr := parseDurationNode(n)
	if ferr != nil {
		return ferr
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// parseDurationNode is the one place that decides what a duration node may
// be; the structural walk and UnmarshalYAML both use it so their errors
// agree. The *FieldError it returns has no path: the caller knows it.
func parseDurationNode(n *yaml.Node) (time.Duration, *FieldError) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return 0, fieldErr("", ErrWrongType, "expected a duration string like \"2s\", got "+describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		// time's message repeats the input; ours adds the field path instead.
		return 0, fieldErr("", ErrInvalidDuration, fmt.Sprintf("invalid duration %q", n.Value))
	}
	return v, nil
}

// UnmarshalYAML reads "unlimited" or a duration string.
func (a *Age) UnmarshalYAML(n *yaml.Node) error {
	v, ferr := parseAgeNode(n)
	if ferr != nil {
		return ferr
	}
	*a = v
	return nil
}

// MarshalYAML writes a as its String.
func (a Age) MarshalYAML() (any, error) { return a.String(), nil }

// parseAgeNode is parseDurationNode for an Age, which may also be
// "unlimited".
func parseAgeNode(n *yaml.Node) (Age, *FieldError) {
	r := resolve(n)
	if r.Kind != yaml.ScalarNode || r.ShortTag() != "!!str" {
		return 0, fieldErr("", ErrWrongType, `expected a duration string like "72h" or "unlimited", got `+describe(r))
	}
	if r.Value == "unlimited" {
		return Unlimited, nil
	}
	v, ferr := parseDurationNode(r)
	if ferr != nil {
		ferr.Reason += ` (or "unlimited")`
	}
	return Age(v), ferr
}
