package buntstore

import (
	"math/bits"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// idFilter answers "certainly not stored" for the id: keys of the pebble
// engine, so that PutOrders reads Pebble only for the ids it may already
// hold: a new order id (nearly every id of a put) costs a few hashes
// instead of a search through the memtables and the tables of every level,
// done while holding the put lock. Measured, orders-nats --batch 100 alone:
// the lookups were 15% of the process's CPU.
//
// It is a chain of Bloom filters (a scalable Bloom filter): when the last
// one holds the ids it was sized for, a new one of twice the size is
// added, so the false-positive rate stays near idFilterFP per filter
// however many orders the store grows to, at 10 bits per id. Each filter
// is blocked (blockFilter): an id's bits are all in one cache line. A false
// positive costs one Pebble read; a false negative cannot happen once the
// filter is ready: it holds every id stored before (added by the scan that
// makes it ready) and since (added by PutOrders before its batch applies).
//
// Until ready it answers "may be stored" for everything. Every method is
// called with pebbleOrders.put held, except ready.
type idFilter struct {
	filters []*blockFilter
	// room is how many more ids the last filter was sized for.
	room uint
	// next is the capacity of the filter added when room runs out.
	next  uint
	ready atomic.Bool
}

// idFilterFP is about the false-positive rate of each filter of the chain
// once it holds the ids it was sized for (TestBlockFilterRate).
const idFilterFP = 0.01

// newIDFilter returns a filter sized for capacity ids before it grows.
func newIDFilter(capacity uint) *idFilter {
	f := &idFilter{next: max(capacity, 1024)}
	f.grow()
	return f
}

func (f *idFilter) grow() {
	f.filters = append(f.filters, newBlockFilter(f.next))
	f.room = f.next
	f.next *= 2
}

// idHash is the hash of an id: key that add and mayHold take, so that a
// put hashes each id once for both.
func idHash(key []byte) uint64 { return xxhash.Sum64(key) }

// add records the key of hash h (idHash) as stored.
func (f *idFilter) add(h uint64) {
	if f.room == 0 {
		f.grow()
	}
	f.filters[len(f.filters)-1].add(h)
	f.room--
}

// mayHold reports false only for a key certainly not stored (h: idHash).
func (f *idFilter) mayHold(h uint64) bool {
	if !f.ready.Load() {
		return true
	}
	for _, b := range f.filters {
		if b.has(h) {
			return true
		}
	}
	return false
}

// bytes is the memory of the filters' bit sets.
func (f *idFilter) bytes() uint {
	var n uint
	for _, b := range f.filters {
		n += uint(len(b.blocks)) * blockBytes
	}
	return n
}

// blockFilter is a blocked Bloom filter: a key's blockProbes bits all lie
// in one 512-bit block, a cache line, chosen by its hash. A classic filter
// spreads them over the whole bit set, so a test costs up to one cache
// miss per probe and an add one per probe: with the chain at 5M ids (three
// filters, 8.4 MiB) those misses were a fifth of the CPU of the puts and
// their compactions (BenchmarkStoreGrowth).
// Here a test or an add of a filter is one miss. Confining the bits to a
// block costs a little accuracy: at 10 bits per key, 1.0% false positives
// (TestBlockFilterRate) against a classic filter's 0.8%.
type blockFilter struct {
	blocks [][blockBytes / 8]uint64
}

const (
	blockBytes  = 64 // a cache line
	blockBits   = blockBytes * 8
	probeBits   = 9 // bits of the probe hash per probe: log2(blockBits)
	blockProbes = 7 // 7 x probeBits of the 64
	bitsPerKey  = 10
)

// newBlockFilter returns a filter sized for capacity keys.
func newBlockFilter(capacity uint) *blockFilter {
	n := max(1, (capacity*bitsPerKey+blockBits-1)/blockBits)
	return &blockFilter{blocks: make([][blockBytes / 8]uint64, n)}
}

// block is the block of hash h, and the bits in it: probeBits of a second
// hash derived from h (a multiplicative mix) for each probe.
func (f *blockFilter) block(h uint64) (b *[blockBytes / 8]uint64, probes uint64) {
	hi, _ := bits.Mul64(h, uint64(len(f.blocks))) // h's share of the blocks, without a division
	return &f.blocks[hi], (h ^ h>>29) * 0x9e3779b97f4a7c15
}

func (f *blockFilter) add(h uint64) {
	b, p := f.block(h)
	for range blockProbes {
		bit := p & (blockBits - 1)
		b[bit>>6] |= 1 << (bit & 63)
		p >>= probeBits
	}
}

func (f *blockFilter) has(h uint64) bool {
	b, p := f.block(h)
	for range blockProbes {
		bit := p & (blockBits - 1)
		if b[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
		p >>= probeBits
	}
	return true
}
