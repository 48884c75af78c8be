package main

import (
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"testing"
)

func TestSetMemoryLimit(t *testing.T) {
	for _, v := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	if err := setMemoryLimit("512MiB", log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Errorf("512MiB: limit %d", got)
	}
	if err := setMemoryLimit("0", log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Errorf("0 changed the limit to %d", got)
	}
	if err := setMemoryLimit("auto", log); err != nil {
		t.Fatal(err)
	}
	// This machine has memory, so auto sets a limit below it.
	if got := debug.SetMemoryLimit(-1); got == 512<<20 || got <= 0 || got == math.MaxInt64 {
		t.Errorf("auto: limit %d", got)
	}
	if err := setMemoryLimit("lots", log); err == nil {
		t.Error("--memory-limit lots accepted")
	}
}
