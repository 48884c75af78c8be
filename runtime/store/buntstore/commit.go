package buntstore

import (
	"context"
	"fmt"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
)

// committer is group commit for one file: single-record writes (sign-ins,
// SMS) that arrive while a commit is under way are run together in the
// next write transaction, so N concurrent writers share one fsync instead
// of queueing for N. Each write function still sees its own reads and
// writes in order, as in a transaction of its own.
type committer struct {
	db   *buntdb.DB
	reqs chan *commitReq
	stop chan struct{}
	done chan struct{}
}

type commitReq struct {
	fn   func(tx *buntdb.Tx) error
	err  error
	done chan struct{}
}

// maxGroup bounds how many writes share one transaction.
const maxGroup = 256

func newCommitter(db *buntdb.DB) *committer {
	c := &committer{db: db, reqs: make(chan *commitReq), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *committer) run() {
	defer close(c.done)
	group := make([]*commitReq, 0, maxGroup)
	for {
		select {
		case r := <-c.reqs:
			group = append(group[:0], r)
		case <-c.stop:
			return
		}
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-c.reqs:
				group = append(group, r)
			default:
				break drain
			}
		}
		err := c.db.Update(func(tx *buntdb.Tx) error {
			for _, r := range group {
				// A write function reads first and writes last, so one
				// that fails has written nothing: the others still commit.
				r.err = r.fn(tx)
			}
			return nil
		})
		for _, r := range group {
			if err != nil && r.err == nil {
				r.err = err
			}
			close(r.done)
		}
	}
}

// do runs fn in the next group transaction and returns its error, or the
// commit's.
func (c *committer) do(ctx context.Context, fn func(tx *buntdb.Tx) error) error {
	r := &commitReq{fn: fn, done: make(chan struct{})}
	select {
	case c.reqs <- r:
	case <-c.stop:
		return fmt.Errorf("buntstore: %w", store.ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("buntstore: %w", ctx.Err())
	}
	<-r.done
	return r.err
}

// close stops taking writes once the running group has committed.
func (c *committer) close() {
	close(c.stop)
	<-c.done
}
