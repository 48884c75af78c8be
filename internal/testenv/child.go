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

// Environment of a runtime host that StartChildRuntime runs in a child
// process of the test binary.
const (
	envChild      = "SURGE_TEST_CHILD_RUNTIME"
	envChildNATS  = "SURGE_TEST_CHILD_NATS"
	envChildCreds = "SURGE_TEST_CHILD_CREDS"
	envChildData  = "SURGE_TEST_CHILD_DATA"
	envChildStore = "SURGE_TEST_CHILD_STORE"
)

// ChildRuntimeMain is the body of a test that is not a test: the runtime
// host StartChildRuntime starts in a child process, for crash tests that
// kill it with SIGKILL. Outside such a child it skips.
func ChildRuntimeMain(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("helper process of a crash test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Never stopped: the parent kills this process.
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

// StartChildRuntime runs the test helper of this test binary (one that
// calls ChildRuntimeMain) as a runtime host on e's NATS, with its data
// in dataDir and the store config storeConfig, and returns once it
// serves. The child is killed, if still running, when the test ends.
func (e *Env) StartChildRuntime(t testing.TB, helper, dataDir, storeConfig string) *exec.Cmd {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^"+helper+"$", "-test.count=1")
	child.Env = append(os.Environ(), envChild+"=1", envChildNATS+"="+e.P.NATSURL(),
		envChildCreds+"="+e.P.NATSAuth().CredsFile, envChildData+"="+dataDir, envChildStore+"="+storeConfig)
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
