package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/internal/platform"
)

// envChild names the helper test a child process runs; envChildSpec holds
// its ChildSpec as JSON.
const (
	envChild     = "SURGE_CHILD_RUNTIME"
	envChildSpec = "SURGE_CHILD_SPEC"
)

// ChildSpec is what a surge process run by Child serves: the options of
// `surge gateway` / `surge runtime` on an existing NATS.
type ChildSpec struct {
	NATSURL     string          `json:"nats_url"`
	Creds       string          `json:"creds"`
	DataDir     string          `json:"data_dir"`
	HTTPAddr    string          `json:"http_addr,omitempty"` // "" runs no gateway
	Runtime     bool            `json:"runtime"`
	Store       string          `json:"store,omitempty"`
	StoreConfig json.RawMessage `json:"store_config,omitempty"`
	AdminToken  string          `json:"admin_token,omitempty"`
	MetricsAddr string          `json:"metrics_addr,omitempty"` // --metrics; "" for none
}

// ServeChildRuntime is the body of the helper test that Child runs in a
// child process: a surge process as its ChildSpec says, never stopped (the
// parent kills it). In the parent process it skips the test.
func ServeChildRuntime(t *testing.T) {
	if os.Getenv(envChild) != t.Name() {
		t.Skip("helper process of a crash test")
	}
	var spec ChildSpec
	if err := json.Unmarshal([]byte(os.Getenv(envChildSpec)), &spec); err != nil {
		fmt.Println("START FAILED: spec:", err)
		os.Exit(3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{NATSURL: spec.NATSURL,
		NATSAuth: natsauth.Client{CredsFile: spec.Creds}, DataDir: spec.DataDir, HTTPAddr: spec.HTTPAddr,
		Runtime: spec.Runtime, Store: spec.Store, StoreConfig: spec.StoreConfig, AdminToken: spec.AdminToken,
		MetricsAddr: spec.MetricsAddr, Logger: childLogger(t)})
	if err != nil {
		fmt.Println("START FAILED:", err)
		os.Exit(3)
	}
	fmt.Println("READY", p.HTTPURL())
	time.Sleep(10 * time.Minute) // killed long before
	os.Exit(4)
}

// ChildRuntime runs the helper test named helper (which calls
// ServeChildRuntime) as a runtime host in a child process on n's NATS,
// with its store in dataDir opened with storeConfig, and returns it once it
// serves. The test kills it (SIGKILL: cmd.Process.Kill); cleanup does
// otherwise.
func ChildRuntime(t *testing.T, helper string, n *Env, dataDir, storeConfig string) *exec.Cmd {
	t.Helper()
	c, _ := Child(t, helper, ChildSpec{NATSURL: n.P.NATSURL(), Creds: n.P.NATSAuth().CredsFile,
		DataDir: dataDir, Runtime: true, StoreConfig: json.RawMessage(storeConfig)})
	return c
}

// Child runs the helper test named helper (which calls ServeChildRuntime)
// as the surge process spec describes, in a child process, and returns it
// once it serves, with its gateway's URL ("" without one). The test may
// kill it (SIGKILL: cmd.Process.Kill); cleanup does otherwise.
func Child(t *testing.T, helper string, spec ChildSpec) (*exec.Cmd, string) {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1")
	child.Env = append(os.Environ(), envChild+"="+helper, envChildSpec+"="+string(b))
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "READY") || strings.HasPrefix(line, "START FAILED") {
				ready <- line
			}
		}
	}()
	select {
	case line := <-ready:
		url, ok := strings.CutPrefix(line, "READY")
		if !ok {
			t.Fatalf("child %s: %s", helper, line)
		}
		return child, strings.TrimSpace(url)
	case <-time.After(60 * time.Second):
		t.Fatalf("child %s not ready within 60s", helper)
	}
	return nil, ""
}
