package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNATSKeys: `surge nats-keys` creates the keys a cluster's nodes share
// and keeps them on a second run (copies made after the first stay valid).
func TestNATSKeys(t *testing.T) {
	data := t.TempDir()
	run := func() string {
		var out bytes.Buffer
		cmd := newRootCmd(nil)
		cmd.SetOut(&out)
		cmd.SetArgs([]string{"nats-keys", "--data", data})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	first := run()
	if !strings.Contains(first, filepath.Join(data, "nats")) {
		t.Errorf("output %q does not name the directory", first)
	}
	operator, err := os.ReadFile(filepath.Join(data, "nats", "operator.nk"))
	if err != nil {
		t.Fatal(err)
	}
	if second := run(); second != first {
		t.Errorf("second run %q, first %q: the account changed", second, first)
	}
	if again, _ := os.ReadFile(filepath.Join(data, "nats", "operator.nk")); !bytes.Equal(again, operator) {
		t.Error("the operator key changed on the second run")
	}
}
