package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeScenario answers at once, fails every failEvery-th call, and stalls
// once, on call stallAt, for stall.
type fakeScenario struct {
	calls     atomic.Int64
	failEvery int64
	stallAt   int64
	stall     time.Duration
	setupErr  error
	verifyErr error
	closed    bool
	verified  bool
}

func (f *fakeScenario) Name() string { return "fake" }

func (f *fakeScenario) Setup(context.Context, int) error { return f.setupErr }

func (f *fakeScenario) Do(context.Context, int) string {
	n := f.calls.Add(1)
	if f.stall > 0 && n == f.stallAt {
		time.Sleep(f.stall)
	}
	if f.failEvery > 0 && n%f.failEvery == 0 {
		return HTTPKind(503)
	}
	return ""
}

func (f *fakeScenario) Close() error { f.closed = true; return nil }

func (f *fakeScenario) Unit() (string, int) { return "things", 10 }

func (f *fakeScenario) Verify(_ context.Context, r *Result) (*Verification, error) {
	f.verified = true
	if f.verifyErr != nil {
		return nil, f.verifyErr
	}
	return &Verification{Passed: true, Acked: r.Ops}, nil
}

func TestRunClosedLoopCount(t *testing.T) {
	sc := &fakeScenario{failEvery: 10}
	res, err := Run(context.Background(), sc, Options{Count: 1000, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Ops + res.Errors; got != 1000 {
		t.Errorf("measured %d operations, want exactly 1000", got)
	}
	if res.Errors != 100 || res.ErrorKinds["http_503"] != 100 {
		t.Errorf("errors %d %v, want 100 http_503", res.Errors, res.ErrorKinds)
	}
	if res.Label != "fake" || res.Mode != "closed" || res.Throughput <= 0 || res.Unit != "things" ||
		res.UnitRate != res.Throughput*10 || res.Latency.Max <= 0 {
		t.Errorf("result %+v", res)
	}
	if !sc.closed || !sc.verified || res.Verify == nil || res.Verify.Acked != res.Ops {
		t.Errorf("closed %v verified %v verify %+v", sc.closed, sc.verified, res.Verify)
	}
}

func TestRunWarmupIsNotMeasured(t *testing.T) {
	sc := &fakeScenario{}
	res, err := Run(context.Background(), sc, Options{Count: 50, Warmup: 100 * time.Millisecond, Concurrency: 2, NoVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 50 || sc.calls.Load() <= 50 {
		t.Errorf("measured %d of %d calls; want 50 measured after a warm-up", res.Ops, sc.calls.Load())
	}
	if sc.verified || res.Verify != nil {
		t.Error("verified despite NoVerify")
	}
}

func TestRunOpenLoopMeasuresFromIntendedTime(t *testing.T) {
	// One worker at 1000/s; call 20 stalls for 200ms. Measured from the
	// send, one operation would be slow. Measured from the intended send
	// time, the ~200 operations due during the stall are all late too.
	sc := &fakeScenario{stallAt: 20, stall: 200 * time.Millisecond}
	res, err := Run(context.Background(), sc, Options{Duration: 500 * time.Millisecond, Concurrency: 1, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "open" || res.Rate != 1000 {
		t.Errorf("mode %s rate %g", res.Mode, res.Rate)
	}
	if res.Ops != 500 || res.Errors != 0 {
		t.Errorf("ops %d errors %d, want the 500 planned", res.Ops, res.Errors)
	}
	if res.Latency.Max < 190_000 {
		t.Errorf("max latency %s, want the 200ms stall", FormatUS(res.Latency.Max))
	}
	// 200 of the 500 waited between 200ms and ~0: the top 10% over 100ms.
	if res.Latency.P90 < 100_000 {
		t.Errorf("p90 %s: the operations queued behind the stall were not charged their wait", FormatUS(res.Latency.P90))
	}
}

func TestRunOpenLoopGivesUpAfterGrace(t *testing.T) {
	// A worker that can do 1 op per 50ms cannot keep 1000/s: after the
	// grace period the rest is counted as not sent, not silently dropped.
	sc := &slowScenario{d: 50 * time.Millisecond}
	res, err := Run(context.Background(), sc, Options{Duration: 200 * time.Millisecond, Concurrency: 1, Rate: 1000,
		Grace: 100 * time.Millisecond, NoVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Ops + res.Errors; got != 200 {
		t.Errorf("ops+errors = %d, want the 200 planned", got)
	}
	if res.ErrorKinds[KindNotSent] == 0 {
		t.Errorf("error kinds %v, want not_sent", res.ErrorKinds)
	}
}

type slowScenario struct{ d time.Duration }

func (*slowScenario) Name() string                     { return "slow" }
func (*slowScenario) Setup(context.Context, int) error { return nil }
func (s *slowScenario) Do(ctx context.Context, _ int) string {
	select {
	case <-time.After(s.d):
		return ""
	case <-ctx.Done():
		return KindTimeout
	}
}
func (*slowScenario) Close() error { return nil }

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		sc   *fakeScenario
	}{
		{"no workers", Options{Duration: time.Second}, &fakeScenario{}},
		{"no duration nor count", Options{Concurrency: 1}, &fakeScenario{}},
		{"negative rate", Options{Concurrency: 1, Duration: time.Second, Rate: -1}, &fakeScenario{}},
		{"setup fails", Options{Concurrency: 1, Count: 1}, &fakeScenario{setupErr: errors.New("boom")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tt.sc, tt.o); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestRunVerifyErrorIsAFailedVerification(t *testing.T) {
	sc := &fakeScenario{verifyErr: errors.New("consumer not drained within 1s")}
	res, err := Run(context.Background(), sc, Options{Count: 10, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verify == nil || res.Verify.Passed || len(res.Verify.Problems) != 1 ||
		!strings.Contains(res.Verify.Problems[0], "not drained") {
		t.Errorf("verify = %+v, want a failure naming the cause", res.Verify)
	}
}

// cpuScenario's verification uses drainCPU of CPU time, marks the run
// settled (as a verification does once its backlog drained), then uses
// readCPU more (its reading back).
type cpuScenario struct {
	fakeScenario
	drainCPU, readCPU time.Duration
}

func (c *cpuScenario) Verify(_ context.Context, r *Result) (*Verification, error) {
	useCPU(c.drainCPU)
	r.settled()
	useCPU(c.readCPU)
	return &Verification{Passed: true, Acked: r.Ops}, nil
}

// useCPU spins until this process has used d more CPU time.
func useCPU(d time.Duration) {
	start, _ := ProcessCPU(os.Getpid())
	for x := 0; ; x++ {
		if x%100_000 == 0 {
			if now, err := ProcessCPU(os.Getpid()); err != nil || now-start >= d {
				return
			}
		}
	}
}

// TestRunRecordsTargetCPU: with CPUPID the result holds the process's CPU
// time from the start of the load until the verification marked the run
// settled, not the verification's reading back after it; a process that
// is not there fails the run at once.
func TestRunRecordsTargetCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU times come from /proc")
	}
	sc := &cpuScenario{drainCPU: 300 * time.Millisecond, readCPU: 600 * time.Millisecond}
	res, err := Run(context.Background(), sc, Options{Count: 10, Concurrency: 1, CPUPID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if res.TargetPID != os.Getpid() || res.TargetCPU < 0.28 || res.TargetCPU >= 0.6 {
		t.Errorf("TargetPID %d, TargetCPU %.2fs: want this process and 0.3s (the drain), not the 0.6s read after it",
			res.TargetPID, res.TargetCPU)
	}
	// Without a verification that settles later, the load's end counts.
	res, err = Run(context.Background(), &fakeScenario{}, Options{Count: 10, Concurrency: 1, CPUPID: os.Getpid()})
	if err != nil || res.TargetCPU > 0.2 {
		t.Errorf("fake run: TargetCPU %.2fs, %v; want its load's little", res.TargetCPU, err)
	}

	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skip("no true command:", err)
	}
	if _, err := Run(context.Background(), &fakeScenario{}, Options{Count: 10, Concurrency: 1, CPUPID: gone.ProcessState.Pid()}); err == nil {
		t.Errorf("Run with --cpu-pid of an ended process: no error")
	}
}
