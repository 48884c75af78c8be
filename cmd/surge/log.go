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
