package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/grpclog"
)

// logOptions are the logging flags every server command has.
type logOptions struct {
	Level  string
	Format string
}

// bufferedWriter batches log lines into few writes (an access log at tens of
// thousands of requests per second would otherwise be one syscall each) and
// flushes at least every 100ms.
type bufferedWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
}

func newBufferedWriter(w io.Writer) *bufferedWriter {
	b := &bufferedWriter{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{})}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.Flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes out what is buffered.
func (b *bufferedWriter) Flush() {
	b.mu.Lock()
	_ = b.w.Flush()
	b.mu.Unlock()
}

// Close flushes and stops the flusher.
func (b *bufferedWriter) Close() {
	close(b.stop)
	b.Flush()
}

func newLogger(o logOptions) (*slog.Logger, *bufferedWriter, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.Level)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.Level)
	}
	out := newBufferedWriter(os.Stderr)
	hopts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(o.Format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(out, hopts)), out, nil
	case "json":
		return slog.New(slog.NewJSONHandler(out, hopts)), out, nil
	}
	out.Close()
	return nil, nil, fmt.Errorf("--log-format %q: want text or json", o.Format)
}

// grpcLogger sends gRPC's own logs (the vtgate client's) to the process
// log at debug level. Vitess routes them to a JSON logger of its own on
// stderr, which mixed 30 s of dial retries into a text log when vtgate was
// unreachable; the cause reaches the user as the store's error anyway.
type grpcLogger struct{ log *slog.Logger }

func (g grpcLogger) Info(args ...any)                    {}
func (g grpcLogger) Infoln(args ...any)                  {}
func (g grpcLogger) Infof(format string, args ...any)    {}
func (g grpcLogger) Warning(args ...any)                 { g.log.Debug(fmt.Sprint(args...)) }
func (g grpcLogger) Warningln(args ...any)               { g.log.Debug(fmt.Sprint(args...)) }
func (g grpcLogger) Warningf(format string, args ...any) { g.log.Debug(fmt.Sprintf(format, args...)) }
func (g grpcLogger) Error(args ...any)                   { g.log.Debug(fmt.Sprint(args...)) }
func (g grpcLogger) Errorln(args ...any)                 { g.log.Debug(fmt.Sprint(args...)) }
func (g grpcLogger) Errorf(format string, args ...any)   { g.log.Debug(fmt.Sprintf(format, args...)) }
func (g grpcLogger) Fatal(args ...any)                   { g.fatal(fmt.Sprint(args...)) }
func (g grpcLogger) Fatalln(args ...any)                 { g.fatal(fmt.Sprint(args...)) }
func (g grpcLogger) Fatalf(format string, args ...any)   { g.fatal(fmt.Sprintf(format, args...)) }
func (g grpcLogger) V(level int) bool                    { return false }

func (g grpcLogger) fatal(msg string) {
	g.log.Error(msg)
	os.Exit(1)
}

// routeGRPCLogs installs grpcLogger; call it before any gRPC connection.
func routeGRPCLogs(log *slog.Logger) {
	grpclog.SetLoggerV2(grpcLogger{log: log.With("component", "grpc")})
}
