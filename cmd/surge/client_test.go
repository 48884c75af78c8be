package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCallBody checks that `surge call` sends what -d/--body says and
// nothing from the environment: SURGE_DATA names the data directory, and it
// used to become the request body.
func TestCallBody(t *testing.T) {
	file := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(file, []byte(`{"user_id":7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantBody string
	}{
		{"default body despite SURGE_DATA", nil, []string{"SURGE_DATA=./data"}, "{}"},
		{"-d", []string{"-d", `{"user_id":1}`}, []string{"SURGE_DATA=./data"}, `{"user_id":1}`},
		{"--body", []string{"--body", `{"user_id":2}`}, nil, `{"user_id":2}`},
		{"@file", []string{"-d", "@" + file}, nil, `{"user_id":7}`},
		{"SURGE_BODY is not read", nil, []string{"SURGE_BODY=x"}, "{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotPath, gotBody string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				gotPath, gotBody = r.URL.Path, string(b)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"ok":true}`))
			}))
			t.Cleanup(srv.Close)
			root := newRootCmd(append(tt.env, "SURGE_GATEWAY="+srv.URL))
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetArgs(append([]string{"call", "signin"}, tt.args...))
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if gotPath != "/function/signin" || gotBody != tt.wantBody {
				t.Errorf("sent %s %q, want /function/signin %q", gotPath, gotBody, tt.wantBody)
			}
			if strings.TrimSpace(out.String()) != `{"ok":true}` {
				t.Errorf("printed %q", out.String())
			}
		})
	}
}

func TestCallBodyFileMissing(t *testing.T) {
	root := newRootCmd(nil)
	root.SetArgs([]string{"call", "signin", "-d", "@/nonexistent/body.json"})
	root.SetOut(io.Discard)
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "--body") || !strings.Contains(err.Error(), "/nonexistent/body.json") {
		t.Fatalf("err = %v, want one naming --body and the file", err)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		root := newRootCmd(nil)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 6 || !strings.HasPrefix(lines[0], "surge ") || !strings.HasPrefix(lines[1], "commit ") {
			t.Fatalf("%v printed %q", args, out.String())
		}
		// A test binary carries its module's dependencies, so the versions
		// come from go.mod, not "unknown".
		for i, name := range []string{"nats-server v2.", "nats.go v1.", "echo v4."} {
			if !strings.HasPrefix(lines[3+i], name) {
				t.Errorf("%v line %d = %q, want %s...", args, 3+i, lines[3+i], name)
			}
		}
	}
}
