package runtime

import (
	"sync"
	"testing"
	"time"
)

type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCache(t *testing.T) {
	clock := &stepClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := NewCache[int64, string](time.Second, 2*cacheShards, clock)
	if _, ok := c.Get(1); ok {
		t.Fatal("hit on an empty cache")
	}
	c.Put(1, "a")
	if got, ok := c.Get(1); !ok || got != "a" {
		t.Fatalf("Get = %q %v", got, ok)
	}
	clock.add(999 * time.Millisecond)
	if _, ok := c.Get(1); !ok {
		t.Error("expired before its TTL")
	}
	clock.add(time.Millisecond)
	if _, ok := c.Get(1); ok {
		t.Error("served after its TTL")
	}
	// Bounded: however many keys go in, no shard holds more than perShard.
	for k := range int64(100 * cacheShards) {
		c.Put(k, "x")
	}
	for i := range c.shards {
		if n := len(c.shards[i].m); n > c.perShard {
			t.Fatalf("shard %d holds %d entries, bound %d", i, n, c.perShard)
		}
	}
	// A small cache still has room for a few keys per shard, so two keys
	// that share a shard do not evict each other.
	small := NewCache[int64, string](time.Second, 10, clock)
	if small.perShard != minPerShard {
		t.Errorf("a 10-entry cache has %d per shard, want %d", small.perShard, minPerShard)
	}
	for k := range int64(minPerShard * cacheShards) {
		small.Put(k, "x")
	}
	hits := 0
	for k := range int64(minPerShard * cacheShards) {
		if _, ok := small.Get(k); ok {
			hits++
		}
	}
	if hits < minPerShard*cacheShards/2 {
		t.Errorf("%d of %d keys kept", hits, minPerShard*cacheShards)
	}
}

// TestCacheConcurrent: concurrent writers of one key set; every value read
// back is one some writer put (run with -race to check the locking too).
func TestCacheConcurrent(t *testing.T) {
	c := NewCache[string, int](time.Minute, 1000, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := string(rune('a' + (g+i)%26))
				c.Put(k, i)
				// Writer w puts i under the key (w+i)%26, so a value v read
				// under key n came from writer (n-v) mod 26, one of 0..7.
				if v, ok := c.Get(k); !ok || v < 0 || v >= 1000 || ((int(k[0]-'a')-v)%26+26)%26 >= 8 {
					t.Errorf("Get(%q) = %d, %v", k, v, ok)
					return
				}
			}
		})
	}
	wg.Wait()
	for k := range 26 {
		if _, ok := c.Get(string(rune('a' + k))); !ok {
			t.Errorf("key %c lost: 26 keys fit easily", 'a'+k)
		}
	}
}
