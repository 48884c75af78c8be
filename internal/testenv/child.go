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

// Environment of a runtime host run as a child process by ChildRuntime.
const (
	envChild      = "SURGE_CHILD_RUNTIME"
	envChildNATS  = "SURGE_CHILD_NATS"
	envChildCreds = "SURGE_CHILD_CREDS"
	envChildData  = "SURGE_CHILD_DATA"
	envChildStore = "SURGE_CHILD_STORE"
)

// ServeChildRuntime is the body of the helper test that ChildRuntime runs
// in a child process: a runtime host on the parent's NATS, never stopped
// (the parent kills it). In the parent process it skips the test.
func ServeChildRuntime(t *testing.T) {
	if os.Getenv(envChild) != t.Name() {
		t.Skip("helper process of a crash test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := platform.Start(ctx, platform.Options{NATSURL: os.Getenv(envChildNATS),
		NATSAuth: natsauth.Client{CredsFile: os.Getenv(envChildCreds)}, DataDir: os.Getenv(envChildData),
		Runtime: true, StoreConfig: json.RawMessage(os.Getenv(envChildStore)), Logger: Logger(t)}); err != nil {
		fmt.Println("START FAILED:", err)
		os.Exit(3)
	}
	fmt.Println("READY")
	time.Sleep(60 * time.Second) // killed long before
	os.Exit(4)
}

// ChildRuntime runs the helper test named helper (which calls
// ServeChildRuntime) as a runtime host in a child process on n's NATS,
// with its store in dataDir opened with storeConfig, and returns it once it
// serves. The test kills it (SIGKILL: cmd.Process.Kill); cleanup does
// otherwise.
func ChildRuntime(t *testing.T, helper string, n *Env, dataDir, storeConfig string) *exec.Cmd {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1")
	child.Env = append(os.Environ(), envChild+"="+helper, envChildNATS+"="+n.P.NATSURL(),
		envChildCreds+"="+n.P.NATSAuth().CredsFile, envChildData+"="+dataDir, envChildStore+"="+storeConfig)
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
			if line := sc.Text(); line == "READY" || strings.HasPrefix(line, "START FAILED") {
				ready <- line
			}
		}
	}()
	select {
	case line := <-ready:
		if line != "READY" {
			t.Fatalf("child runtime: %s", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child runtime not ready within 20s")
	}
	return child
}
