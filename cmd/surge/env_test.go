package main

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       []string
		wantHTTP  string
		wantDrain time.Duration
		wantErr   bool
	}{
		{"defaults", nil, nil, "127.0.0.1:8080", 30 * time.Second, false},
		{"env sets", nil, []string{"SURGE_HTTP=0.0.0.0:9000", "SURGE_DRAIN_TIMEOUT=5s"}, "0.0.0.0:9000", 5 * time.Second, false},
		{"flag wins over env", []string{"--http", "127.0.0.1:1"}, []string{"SURGE_HTTP=0.0.0.0:9000"}, "127.0.0.1:1", 30 * time.Second, false},
		{"other prefixes ignored", nil, []string{"HTTP=x", "XSURGE_HTTP=y"}, "127.0.0.1:8080", 30 * time.Second, false},
		{"bad env value is an error", nil, []string{"SURGE_DRAIN_TIMEOUT=soon"}, "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			httpAddr := fs.String("http", "127.0.0.1:8080", "")
			drain := fs.Duration("drain-timeout", 30*time.Second, "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := applyEnv(fs, tt.env)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *httpAddr != tt.wantHTTP || *drain != tt.wantDrain {
				t.Errorf("http=%s drain=%s, want %s %s", *httpAddr, *drain, tt.wantHTTP, tt.wantDrain)
			}
		})
	}
	if got := envName("nats-listen"); got != "SURGE_NATS_LISTEN" {
		t.Errorf("envName = %s", got)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"384MiB", 384 << 20, false},
		{"1GiB", 1 << 30, false},
		{"512 MB", 512 << 20, false},
		{"1000", 1000, false},
		{"0", 0, false},
		{"-1MiB", 0, true},
		{"lots", 0, true},
		{"1.5GiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseSize(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
