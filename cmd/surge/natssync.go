package main

import (
	"fmt"
	"time"

	"github.com/surgefn/surge/internal/platform"
)

// syncValue is the --nats-sync flag: auto (stored as 0), always
// (platform.SyncAlways) or an interval.
type syncValue struct{ d *time.Duration }

func (v syncValue) String() string {
	switch {
	case v.d == nil || *v.d == 0:
		return "auto"
	case *v.d == platform.SyncAlways:
		return "always"
	}
	return v.d.String()
}

func (v syncValue) Set(s string) error {
	switch s {
	case "auto":
		*v.d = 0
		return nil
	case "always":
		*v.d = platform.SyncAlways
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not auto, always or a positive duration such as 1s", s)
	}
	*v.d = d
	return nil
}

func (syncValue) Type() string { return "auto|always|DURATION" }
