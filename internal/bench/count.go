package bench

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// CountVerifier verifies an order intake that is not surge's (the peer
// stack of ../shared/peer) by the number of orders its store holds: a
// command that prints that number, run before the load and then polled
// until the store holds every accepted order or Timeout passes. It checks
// nothing is lost or added and measures the persisted rate; it cannot list
// a user's orders, so duplicates within the count are not told apart.
type CountVerifier struct {
	// Command is run without a shell (its first word is the program) and
	// prints one integer.
	Command []string
	// Timeout bounds the wait for the store to catch up.
	Timeout time.Duration

	before int64
}

// NewCountVerifier parses command ("peer count --mysql DSN").
func NewCountVerifier(command string, timeout time.Duration) (*CountVerifier, error) {
	words := strings.Fields(command)
	switch {
	case len(words) == 0:
		return nil, errors.New("--verify-count: want a command that prints the number of stored orders")
	case timeout <= 0:
		return nil, fmt.Errorf("--verify-timeout must be positive, got %s", timeout)
	}
	return &CountVerifier{Command: words, Timeout: timeout}, nil
}

func (v *CountVerifier) count(ctx context.Context) (int64, error) {
	out, err := exec.CommandContext(ctx, v.Command[0], v.Command[1:]...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return 0, fmt.Errorf("%s: %w: %s", strings.Join(v.Command, " "), err, strings.TrimSpace(string(ee.Stderr)))
		}
		return 0, fmt.Errorf("%s: %w", strings.Join(v.Command, " "), err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s printed %q, not a number", strings.Join(v.Command, " "), strings.TrimSpace(string(out)))
	}
	return n, nil
}

// start records the count before the load.
func (v *CountVerifier) start(ctx context.Context) (err error) {
	v.before, err = v.count(ctx)
	return err
}

// verify waits until the store holds acked more orders than before.
func (v *CountVerifier) verify(ctx context.Context, acked int64, r *Result) (*Verification, error) {
	ctx, cancel := context.WithTimeout(ctx, v.Timeout)
	defer cancel()
	var stored int64
	for {
		n, err := v.count(ctx)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if err == nil {
			stored = n - v.before
		}
		if stored >= acked || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if stored >= acked {
		r.settled() // the store has caught up
	}
	ver := &Verification{Acked: acked, Stored: stored, Lost: max(0, acked-stored), Unexpected: max(0, stored-acked)}
	// An error (a timeout) may have reached the store without an answer.
	ver.Passed = ver.Lost == 0 && ver.Unexpected <= r.Errors
	if ver.Lost == 0 {
		ver.PersistedRate = float64(acked) / time.Since(r.Start).Seconds()
	}
	if !ver.Passed {
		ver.Problems = append(ver.Problems, fmt.Sprintf("the store holds %d new orders for %d accepted", stored, acked))
	}
	return ver, nil
}
