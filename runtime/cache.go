package runtime

import (
	"hash/maphash"
	"sync"
	"time"
)

// Cache is the short-lived in-process cache (L1) functions put in front of a
// KV bucket for their hottest reads: entries live for a TTL on the
// function's clock, the size is bounded, and the map is sharded so
// concurrent readers rarely share a lock. Safe for concurrent use.
type Cache[K comparable, V any] struct {
	ttl      time.Duration
	perShard int
	clock    Clock
	seed     maphash.Seed
	shards   [cacheShards]cacheShard[K, V]
}

const cacheShards = 64

type cacheShard[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v       V
	expires int64 // clock UnixNano
}

// minPerShard is the least room of a shard: with fewer, two hot keys that
// hash to one shard would keep evicting each other.
const minPerShard = 8

// NewCache returns a cache of about size entries (at least minPerShard per
// shard) that keeps each for ttl on clock (nil: the wall clock).
func NewCache[K comparable, V any](ttl time.Duration, size int, clock Clock) *Cache[K, V] {
	if clock == nil {
		clock = SystemClock{}
	}
	c := &Cache[K, V]{ttl: ttl, perShard: max(minPerShard, (size+cacheShards-1)/cacheShards), clock: clock, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[K]cacheEntry[V])
	}
	return c
}

func (c *Cache[K, V]) shard(k K) *cacheShard[K, V] {
	return &c.shards[maphash.Comparable(c.seed, k)%cacheShards]
}

// Get returns k's value while it is fresh.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	s := c.shard(k)
	now := c.clock.Now().UnixNano()
	s.mu.Lock()
	e, ok := s.m[k]
	s.mu.Unlock()
	if !ok || now >= e.expires {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put keeps v for k for the TTL. A full shard first drops its expired
// entries, then arbitrary ones down to three quarters of its room, so the
// sweep runs once per perShard/4 new keys, not on every one.
func (c *Cache[K, V]) Put(k K, v V) {
	s := c.shard(k)
	now := c.clock.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		for k, e := range s.m {
			if now >= e.expires {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) <= c.perShard*3/4 {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[k] = cacheEntry[V]{v: v, expires: now + int64(c.ttl)}
}
