package buntstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

// TestIDFilterGrows: past the ids the first filter was sized for, the
// chain grows; every id added is still held, and unseen ids are mostly
// answered "not stored".
func TestIDFilterGrows(t *testing.T) {
	f := newIDFilter(1024)
	if !f.mayHold(idHash([]byte("id:x"))) {
		t.Fatal("a filter not yet ready answered not stored")
	}
	f.ready.Store(true)
	const n = 20000
	for i := range n {
		f.add(idHash(fmt.Appendf(nil, "id:held-%d", i)))
	}
	if len(f.filters) < 4 {
		t.Errorf("%d ids in %d filters: want the chain grown from 1024", n, len(f.filters))
	}
	for i := range n {
		if !f.mayHold(idHash(fmt.Appendf(nil, "id:held-%d", i))) {
			t.Fatalf("id %d added, answered not stored", i)
		}
	}
	fp := 0
	for i := range n {
		if f.mayHold(idHash(fmt.Appendf(nil, "id:new-%d", i))) {
			fp++
		}
	}
	// Each filter of the chain is sized for 1%.
	if rate := float64(fp) / n; rate > float64(len(f.filters))*idFilterFP*1.5 {
		t.Errorf("false positives %.2f%% with %d filters", 100*rate, len(f.filters))
	}
}

// pauseScanAt makes the scans of stores opened next wait before their
// chunk'th chunk: paused is closed when one does, and it goes on once
// resume is closed.
func pauseScanAt(t *testing.T, chunk int) (paused, resume chan struct{}) {
	paused, resume = make(chan struct{}), make(chan struct{})
	n := 0
	scanPause = func() {
		if n++; n == chunk {
			close(paused)
			<-resume
		}
	}
	t.Cleanup(func() { scanPause = nil })
	return paused, resume
}

// TestIDFilterAfterReopen: a reopened store's filter holds the ids stored
// before, so that a put of them again stores nothing, whether it comes
// while the scan runs or after it.
func TestIDFilterAfterReopen(t *testing.T) {
	dir, ctx := t.TempDir(), context.Background()
	mk := func(from, to int) []store.Order { return idOrders("f", from, to, 101) }
	const n = 30000
	s := openPebbleT(t, dir, 4)
	for i := 0; i < n; i += 1000 {
		if got, err := s.PutOrders(ctx, mk(i, i+1000)); err != nil || got != 1000 {
			t.Fatalf("PutOrders = %d, %v", got, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openPebbleT(t, dir, 4)
	// Likely before the scan is done: answered by reads.
	if got, err := s.PutOrders(ctx, mk(0, 1000)); err != nil || got != 0 {
		t.Fatalf("PutOrders of stored orders right after reopen = %d, %v; want 0", got, err)
	}
	<-s.peb.scanned
	if !s.peb.ids.ready.Load() {
		t.Fatal("the scan ended without the filter ready")
	}
	for i := 0; i < n; i += 1000 {
		if got, err := s.PutOrders(ctx, mk(i, i+1000)); err != nil || got != 0 {
			t.Fatalf("PutOrders of stored orders %d.. = %d, %v; want 0", i, got, err)
		}
	}
	if got, err := s.PutOrders(ctx, mk(n-500, n+500)); err != nil || got != 500 {
		t.Fatalf("PutOrders of 500 stored and 500 new = %d, %v; want 500", got, err)
	}
	total := 0
	for u := int64(0); u < 101; u++ {
		l, err := s.ListOrders(ctx, u, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		total += len(l)
	}
	if total != n+500 {
		t.Errorf("%d orders listed, want %d", total, n+500)
	}
}

// TestIDFilterPutsDuringScan: ids put while the scan of a reopened store
// is paused between chunks, with the filter's chain growing meanwhile, are
// in the filter once it is ready: putting them again stores nothing, and
// neither does putting the ids stored before the reopen.
func TestIDFilterPutsDuringScan(t *testing.T) {
	dir, ctx := t.TempDir(), context.Background()
	mk := func(prefix string, from, to int) []store.Order { return idOrders(prefix, from, to, 37) }
	const n = 3 * idScanChunk
	s := openPebbleT(t, dir, 4)
	if got, err := s.PutOrders(ctx, mk("old", 0, n)); err != nil || got != n {
		t.Fatalf("PutOrders = %d, %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	defer func(start uint) { idFilterStart = start }(idFilterStart)
	idFilterStart = 1024 // the chain grows during the scan and the puts
	paused, resume := pauseScanAt(t, 2)
	s = openPebbleT(t, dir, 4)
	<-paused
	// One chunk scanned, the filter not ready: these puts read their ids.
	// Their keys (id:new-...) sort before those already scanned
	// (id:old-...), so the rest of the scan does not see them: only the
	// puts' own adds put them in the filter.
	if got, err := s.PutOrders(ctx, mk("new", 0, 3000)); err != nil || got != 3000 {
		t.Fatalf("PutOrders of new orders during the scan = %d, %v; want 3000", got, err)
	}
	if s.peb.ids.ready.Load() {
		t.Fatal("filter ready before the scan ended")
	}
	close(resume)
	<-s.peb.scanned
	if !s.peb.ids.ready.Load() {
		t.Fatal("the scan ended without the filter ready")
	}
	if len(s.peb.ids.filters) < 4 {
		t.Errorf("%d filters for %d ids from 1024: want the chain grown", len(s.peb.ids.filters), n+3000)
	}
	for _, batch := range [][]store.Order{mk("new", 0, 3000), mk("old", 0, n)} {
		if got, err := s.PutOrders(ctx, batch); err != nil || got != 0 {
			t.Errorf("PutOrders of %d stored orders after the scan = %d, %v; want 0", len(batch), got, err)
		}
	}
}

// TestIDFilterCloseDuringScan: closing a store while its scan runs stops
// the scan and closes cleanly.
func TestIDFilterCloseDuringScan(t *testing.T) {
	dir, ctx := t.TempDir(), context.Background()
	s := openPebbleT(t, dir, 4)
	if _, err := s.PutOrders(ctx, idOrders("c", 0, 3*idScanChunk, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	paused, resume := pauseScanAt(t, 2)
	s, err := OpenWith(dir, Options{Shards: 4, Orders: OrdersPebble})
	if err != nil {
		t.Fatal(err)
	}
	<-paused
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	<-s.peb.stop // Close has asked the scan to stop: let it go on
	close(resume)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung while the scan ran")
	}
	if s.peb.ids.ready.Load() {
		t.Error("a scan stopped by Close made the filter ready")
	}
}

// TestBlockFilterRate: a blocked filter holding the keys it was sized for
// holds every one of them and answers about 1% of other keys "may be
// stored" (idFilterFP; measured 0.98%), a little more than a classic Bloom
// filter of the same 10 bits per key (0.8%).
func TestBlockFilterRate(t *testing.T) {
	const n = 200_000
	f := newBlockFilter(n)
	for i := range n {
		f.add(idHash(fmt.Appendf(nil, "id:held-%d", i)))
	}
	for i := range n {
		if !f.has(idHash(fmt.Appendf(nil, "id:held-%d", i))) {
			t.Fatalf("key %d added, answered not held", i)
		}
	}
	fp := 0
	for i := range n {
		if f.has(idHash(fmt.Appendf(nil, "id:new-%d", i))) {
			fp++
		}
	}
	rate := float64(fp) / n
	t.Logf("false positives: %.3f%%", 100*rate)
	if rate > idFilterFP*1.2 {
		t.Errorf("false positives %.3f%%, want at most %.2f%%", 100*rate, 100*idFilterFP*1.2)
	}
}
