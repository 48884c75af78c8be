package manifests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the JetStream KV bucket that holds deployed manifests, one key
// per function name, the value the normalized manifest as JSON.
const Bucket = "surge_functions"

// ErrNotDeployed means no function of that name is deployed.
var ErrNotDeployed = errors.New("function not deployed")

// Registry is the deployed set of functions, shared by every gateway and
// runtime host through the KV bucket.
type Registry struct {
	kv jetstream.KeyValue
}

// Deployed is a function as stored, with the KV revision that stored it.
type Deployed struct {
	Function Function
	// Seq is the KV revision of the entry; it grows with every deploy.
	Seq uint64
}

// OpenRegistry binds the functions bucket, creating it with replicas (0
// means 1) when missing. Moving an existing bucket up to more replicas is
// the platform's job (host.EnsureInfra, which the processes call first).
func OpenRegistry(ctx context.Context, js jetstream.JetStream, replicas int) (*Registry, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 5, Storage: jetstream.FileStorage,
			Replicas: replicas})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("functions bucket: %w", err)
	}
	return &Registry{kv: kv}, nil
}

// Put deploys fn (normalized and validated by the caller). It is a no-op,
// reporting changed false, when the deployed manifest has the same revision.
func (r *Registry) Put(ctx context.Context, fn Function) (d Deployed, changed bool, err error) {
	cur, err := r.Get(ctx, fn.Metadata.Name)
	if err == nil && cur.Function.Revision() == fn.Revision() {
		return cur, false, nil
	}
	if err != nil && !errors.Is(err, ErrNotDeployed) {
		return Deployed{}, false, err
	}
	b, err := json.Marshal(fn)
	if err != nil {
		return Deployed{}, false, fmt.Errorf("encode %s: %w", fn.Metadata.Name, err)
	}
	seq, err := r.kv.Put(ctx, fn.Metadata.Name, b)
	if err != nil {
		return Deployed{}, false, fmt.Errorf("store %s: %w", fn.Metadata.Name, err)
	}
	return Deployed{Function: fn, Seq: seq}, true, nil
}

// Get returns the deployed function name, or ErrNotDeployed.
func (r *Registry) Get(ctx context.Context, name string) (Deployed, error) {
	e, err := r.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Deployed{}, fmt.Errorf("%w: %s", ErrNotDeployed, name)
	}
	if err != nil {
		return Deployed{}, fmt.Errorf("read %s: %w", name, err)
	}
	return decodeEntry(e)
}

// Delete removes the function name; removing an absent one is ErrNotDeployed.
func (r *Registry) Delete(ctx context.Context, name string) error {
	if _, err := r.Get(ctx, name); err != nil {
		return err
	}
	if err := r.kv.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// List returns every deployed function, sorted by name.
func (r *Registry) List(ctx context.Context) ([]Deployed, error) {
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var out []Deployed
	for k := range lister.Keys() {
		d, err := r.Get(ctx, k)
		if errors.Is(err, ErrNotDeployed) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function.Metadata.Name < out[j].Function.Metadata.Name })
	return out, nil
}

// Revision is one entry of a function's deploy history: a deploy, or its
// removal (Removed, with a zero Function).
type Revision struct {
	Deployed
	Removed bool
	Time    time.Time
}

// History returns the deploys and removals of function name the bucket
// still keeps (its last few), oldest first; ErrNotDeployed when it keeps
// none.
func (r *Registry) History(ctx context.Context, name string) ([]Revision, error) {
	entries, err := r.kv.History(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotDeployed, name)
	}
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", name, err)
	}
	out := make([]Revision, 0, len(entries))
	for _, e := range entries {
		rev := Revision{Deployed: Deployed{Seq: e.Revision()}, Time: e.Created()}
		if e.Operation() != jetstream.KeyValuePut {
			rev.Removed = true
		} else if rev.Deployed, err = decodeEntry(e); err != nil {
			return nil, err
		}
		out = append(out, rev)
	}
	return out, nil
}

// Event is one change seen by Watch: Function is nil when name was removed.
type Event struct {
	Name     string
	Function *Function
	Seq      uint64
	// Initial is true for events replayed from the current state; the last
	// of them is followed by a Synced event.
	Initial bool
	// Synced marks the end of the initial replay (Name is empty).
	Synced bool
}

// Watch calls fn for every deployed function, then Synced, then every change,
// until ctx ends. An entry that does not decode is reported to bad and skipped.
func (r *Registry) Watch(ctx context.Context, fn func(Event), bad func(key string, err error)) error {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch functions: %w", err)
	}
	defer w.Stop()
	initial := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				initial = false
				fn(Event{Synced: true})
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				fn(Event{Name: e.Key(), Seq: e.Revision(), Initial: initial})
				continue
			}
			d, err := decodeEntry(e)
			if err != nil {
				if bad != nil {
					bad(e.Key(), err)
				}
				continue
			}
			fn(Event{Name: e.Key(), Function: &d.Function, Seq: d.Seq, Initial: initial})
		}
	}
}

func decodeEntry(e jetstream.KeyValueEntry) (Deployed, error) {
	var f Function
	if err := json.Unmarshal(e.Value(), &f); err != nil {
		return Deployed{}, fmt.Errorf("decode deployed %s: %w", e.Key(), err)
	}
	return Deployed{Function: f, Seq: e.Revision()}, nil
}
