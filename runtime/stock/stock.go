// Package stock is a stock counter on a JetStream KV bucket: reserve N
// units of a key at most once per claim id, never below zero, correct
// across goroutines, replicas, hosts and restarts.
//
// A key's stock is split into K buckets, the KV keys "<key>.b0" ...
// "<key>.b<K-1>", each holding a share: {"total":T,"sold":S,"claims":{id:n}}.
// A reservation is one compare-and-set (kv.Update on the revision read) of
// one bucket that both takes the units and records the claim id, so there
// is no moment at which units are taken without the claim that took them,
// or the other way round: a process killed at any point has either taken
// the units under its claim or not at all. A retry of the same claim finds
// it recorded and gets the same answer without taking anything.
//
// Splitting keeps a hot key from being capped by one key's CAS rate:
// reservations start at the bucket their claim id hashes to and move on
// to the next one only when it has too few units left, so concurrent
// buyers mostly contend on different keys. A key is sold out for n units
// when the first bucket of its walk that is not empty holds fewer than n;
// a reservation never spans buckets, so with n > 1 the last units spread
// over buckets can be out of reach of a large order while small ones
// still succeed.
//
// A reservation walks the buckets in an order fixed by the claim id and
// checks each for the claim before it takes units from it, so a retry
// finds an earlier reservation of its claim before it could take again.
// A bucket Set refills after it sold out is marked, and a reservation
// about to take from a marked bucket first looks for its claim in the
// buckets after it, so a claim that fell over before the refill is still
// found. What remains: the same claim reserved by two concurrent callers
// at the moment of a refill (one walking past the bucket empty, the other
// finding it refilled before the first one's write) can take twice.
//
// Claims stay in their bucket's value, so a value grows with the units it
// sold (about 40 bytes a claim): the package suits stock of up to some
// tens of thousands of units per key.
package stock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime"
)

// Sentinel errors of the package; test with errors.Is.
var (
	// ErrSoldOut means no bucket of the key holds the units asked for.
	ErrSoldOut = errors.New("stock: sold out")
	// ErrBelowSold means Set was asked for less than is already sold.
	ErrBelowSold = errors.New("stock: total below the units sold")
	// ErrNoStock means the key was never Set.
	ErrNoStock = errors.New("stock: no such key")
	// ErrBadCount means a unit count was not positive (Reserve) or was
	// negative (Set).
	ErrBadCount = errors.New("stock: invalid unit count")
)

// DefaultBuckets is the number of buckets of New(kv, 0).
const DefaultBuckets = 8

// maxAttempts bounds the CAS retries of one call under contention.
const maxAttempts = 200

// Stock reserves units of keys in one KV bucket. The number of buckets
// of a key must not change once the key was Set. It is safe for
// concurrent use.
type Stock struct {
	kv      jetstream.KeyValue
	buckets int
	// turns queue this process's reservations per bucket (by index,
	// whatever the key): callers of one Stock then lose CAS races only to
	// other processes, instead of all retrying against each other.
	turns []sync.Mutex
}

// New returns the stock of keys in kv, each split into buckets buckets
// (DefaultBuckets when buckets <= 0).
func New(kv jetstream.KeyValue, buckets int) *Stock {
	if buckets <= 0 {
		buckets = DefaultBuckets
	}
	return &Stock{kv: kv, buckets: buckets, turns: make([]sync.Mutex, buckets)}
}

// Buckets is how many buckets each key is split into.
func (s *Stock) Buckets() int { return s.buckets }

// Claim is a reservation: its id, the units it holds and the bucket
// that holds them. Replayed reports a claim that was already recorded, by
// an earlier call with the same id.
type Claim struct {
	ID       string
	Units    int64
	Bucket   int
	Replayed bool
}

// Levels is the state of a key: the units it holds and the units sold.
type Levels struct {
	Total int64
	Sold  int64
}

// Remaining is the units not sold yet.
func (l Levels) Remaining() int64 { return l.Total - l.Sold }

// value is one bucket's content.
type value struct {
	Total  int64            `json:"total"`
	Sold   int64            `json:"sold"`
	Claims map[string]int64 `json:"claims,omitempty"`
	// Refilled marks a bucket Set raised after it had sold out: a claim
	// walking past it when it was empty may sit in a later bucket, so a
	// reservation looks there before it takes from this one.
	Refilled bool `json:"refilled,omitempty"`
}

// entry is one bucket as read: its value and revision (0: missing).
type entry struct {
	v   value
	rev uint64
}

func (s *Stock) bucketKey(key string, i int) string { return key + ".b" + strconv.Itoa(i) }

// readAll reads every bucket of key concurrently.
func (s *Stock) readAll(ctx context.Context, key string) ([]entry, error) {
	out := make([]entry, s.buckets)
	errs := make([]error, s.buckets)
	var wg sync.WaitGroup
	for i := range s.buckets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = s.read(ctx, key, i)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (s *Stock) read(ctx context.Context, key string, i int) (entry, error) {
	e, err := s.kv.Get(ctx, s.bucketKey(key, i))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return entry{}, nil
	}
	if err != nil {
		return entry{}, fmt.Errorf("stock %s bucket %d: %w", key, i, err)
	}
	var v value
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return entry{}, fmt.Errorf("stock %s bucket %d: %w", key, i, err)
	}
	return entry{v: v, rev: e.Revision()}, nil
}

// write stores v in bucket i of key if it is still at revision rev (0:
// create), reporting a lost race as conflict.
func (s *Stock) write(ctx context.Context, key string, i int, v value, rev uint64) (conflict bool, err error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, err
	}
	k := s.bucketKey(key, i)
	if rev == 0 {
		_, err = s.kv.Create(ctx, k, b)
	} else {
		_, err = s.kv.Update(ctx, k, b, rev)
	}
	if runtime.IsKVConflict(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("stock %s bucket %d: %w", key, i, err)
	}
	return false, nil
}

// Reserve takes n units of key for claim, at most once per claim id: a
// claim already recorded is returned as it is (Replayed, with the units it
// holds, whatever n is now). ErrSoldOut when no bucket holds n units,
// ErrNoStock when key was never Set.
//
// It walks the buckets in a fixed order from the one the claim hashes to,
// checking each for the claim, and takes the units from the first that has
// them; after a lost CAS it reads that bucket again. It moves on only past
// empty buckets (a bucket with fewer than n units left ends the walk with
// ErrSoldOut), and an empty bucket stays empty, so a retry of the same
// claim, with any n, meets the claim before any bucket it could take from
// (a bucket Set refilled sends it to look further first; see the package doc).
// An uncontended reservation is one read and one write.
func (s *Stock) Reserve(ctx context.Context, key, claim string, n int64) (Claim, error) {
	if n <= 0 {
		return Claim{}, fmt.Errorf("%w: %d units", ErrBadCount, n)
	}
	start, exists := s.start(claim), false
	for j := 0; j < s.buckets; j++ {
		i := (start + j) % s.buckets
		if c, done, err := s.reserveIn(ctx, key, claim, n, start, j, i, &exists); done {
			return c, err
		}
	}
	if !exists {
		return Claim{}, fmt.Errorf("%w: %s", ErrNoStock, key)
	}
	return Claim{}, ErrSoldOut
}

// reserveIn tries bucket i, the j-th of the walk, in this process's turn
// for it. done is false when the bucket is empty (the walk goes on);
// exists is set when the bucket exists.
func (s *Stock) reserveIn(ctx context.Context, key, claim string, n int64, start, j, i int, exists *bool) (c Claim, done bool, err error) {
	s.turns[i].Lock()
	defer s.turns[i].Unlock()
	for attempt := 0; ; attempt++ {
		e, err := s.read(ctx, key, i)
		if err != nil {
			return Claim{}, true, err
		}
		if u, ok := e.v.Claims[claim]; ok {
			return Claim{ID: claim, Units: u, Bucket: i, Replayed: true}, true, nil
		}
		*exists = *exists || e.rev != 0
		left := e.v.Total - e.v.Sold
		if e.rev == 0 || left <= 0 {
			return Claim{}, false, nil // empty: the next bucket
		}
		if left < n {
			// Not the next bucket: a retry of this claim with fewer
			// units would take them here while the claim sits there.
			return Claim{}, true, ErrSoldOut
		}
		if e.v.Refilled {
			if c, ok, err := s.findAfter(ctx, key, claim, start, j); err != nil || ok {
				return c, true, err
			}
		}
		v := e.v
		v.Sold += n
		if v.Claims == nil {
			v.Claims = map[string]int64{}
		}
		v.Claims[claim] = n
		conflict, err := s.write(ctx, key, i, v, e.rev)
		if err != nil {
			return Claim{}, true, err
		}
		if !conflict {
			return Claim{ID: claim, Units: n, Bucket: i}, true, nil
		}
		if err := ctx.Err(); err != nil {
			return Claim{}, true, err
		}
		if attempt == maxAttempts {
			return Claim{}, true, fmt.Errorf("stock %s: gave up after %d lost races", key, maxAttempts)
		}
	}
}

// findAfter looks for claim in the buckets after the j-th of its walk.
func (s *Stock) findAfter(ctx context.Context, key, claim string, start, j int) (Claim, bool, error) {
	for k := j + 1; k < s.buckets; k++ {
		i := (start + k) % s.buckets
		e, err := s.read(ctx, key, i)
		if err != nil {
			return Claim{}, false, err
		}
		if u, ok := e.v.Claims[claim]; ok {
			return Claim{ID: claim, Units: u, Bucket: i, Replayed: true}, true, nil
		}
	}
	return Claim{}, false, nil
}

// start is the bucket a claim tries first.
func (s *Stock) start(claim string) int {
	h := fnv.New32a()
	h.Write([]byte(claim))
	return int(h.Sum32() % uint32(s.buckets))
}

// Set makes key hold total units, creating it when missing. Raising adds
// the new units; lowering is allowed down to the units sold
// (ErrBelowSold below that). Each bucket keeps what it sold plus an even
// share of what remains. Buckets are written one by one, so a Set that
// fails half way leaves some buckets at the new share; the key is always
// consistent (its total is the sum of its buckets'), and calling Set again
// finishes the job.
func (s *Stock) Set(ctx context.Context, key string, total int64) (Levels, error) {
	if total < 0 {
		return Levels{}, fmt.Errorf("%w: %d units", ErrBadCount, total)
	}
	for range maxAttempts {
		all, err := s.readAll(ctx, key)
		if err != nil {
			return Levels{}, err
		}
		var sold int64
		for _, e := range all {
			sold += e.v.Sold
		}
		if total < sold {
			return Levels{Total: sum(all), Sold: sold}, fmt.Errorf("%w: %d sold, %d asked", ErrBelowSold, sold, total)
		}
		left, k := total-sold, int64(s.buckets)
		raced := false
		for i, e := range all {
			v := e.v
			want := v.Sold + left/k
			if int64(i) < left%k {
				want++
			}
			if e.rev != 0 && v.Total == want {
				continue
			}
			if e.rev != 0 && v.Sold > 0 && v.Sold >= v.Total && want > v.Total {
				v.Refilled = true
			}
			v.Total = want
			conflict, err := s.write(ctx, key, i, v, e.rev)
			if err != nil {
				return Levels{}, err
			}
			if conflict {
				raced = true
				break
			}
		}
		if !raced {
			return Levels{Total: total, Sold: sold}, nil
		}
	}
	return Levels{}, fmt.Errorf("stock %s: gave up after %d lost races", key, maxAttempts)
}

func sum(all []entry) (t int64) {
	for _, e := range all {
		t += e.v.Total
	}
	return t
}

// Get returns the levels of key (ErrNoStock when it was never Set).
func (s *Stock) Get(ctx context.Context, key string) (Levels, error) {
	all, err := s.readAll(ctx, key)
	if err != nil {
		return Levels{}, err
	}
	var l Levels
	exists := false
	for _, e := range all {
		exists = exists || e.rev != 0
		l.Total += e.v.Total
		l.Sold += e.v.Sold
	}
	if !exists {
		return Levels{}, fmt.Errorf("%w: %s", ErrNoStock, key)
	}
	return l, nil
}

// Claims returns every claim recorded on key with its units: what a
// reconciler walks to finish work whose reservation succeeded but whose
// follow-up (publishing an order) may not have happened.
func (s *Stock) Claims(ctx context.Context, key string) (map[string]int64, error) {
	all, err := s.readAll(ctx, key)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, e := range all {
		for c, n := range e.v.Claims {
			out[c] = n
		}
	}
	return out, nil
}
