package platform

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// startPprof serves the Go profiler (CPU, heap, goroutines, mutex, block) for profiling
// a running platform: go tool pprof http://ADDR/debug/pprof/profile.
func (p *Platform) startPprof(addr string, contention bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof %s: %w", addr, err)
	}
	// Contention is sampled too (1 in 20 mutex waits, blocking over 10µs),
	// for the mutex and block profiles, unless --pprof-contention=false:
	// every blocking operation then pays for the sampling (make bench's
	// store-growth surge up serves pprof only for its GC, and turns it off).
	if contention {
		runtime.SetMutexProfileFraction(20)
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	p.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.pprof.Serve(ln) }()
	p.log.Info("pprof listening", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return nil
}
