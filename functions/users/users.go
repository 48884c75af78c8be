// Package users is the user centre: a profile per user (name, level),
// read cache first and written with optimistic locking.
//
// users.get (GET /v1/users/{user_id}, fn.users.get) answers
// {"user_id","name","level","version","updated_at"} with ETag: "<version>":
// from an L1 runtime.Cache in the process (TTL l1TTL, default 250ms), else
// from the KV bucket USERS (key u.<user_id>), else from the store, which
// then fills USERS. 404 user_not_found before the first PUT.
//
// users.put (PUT /v1/users/{user_id}, fn.users.put) takes
// {"name":"...","level":N} (both required, unknown fields refused; name 1
// to 64 characters of UTF-8 without control characters, level 0 to
// MaxLevel) and writes it with a compare-and-set on the version in the
// store on the user's shard, which decides. The preconditions follow RFC
// 9110 section 13.1.1 with strong comparison:
//
//   - no If-Match: creates version 1 when there is no profile; once one
//     exists it is 428 precondition_required (RFC 6585), so a client that
//     never read the profile cannot overwrite it blindly;
//   - If-Match: "<version>" (or a list of them): written as version+1 when
//     the stored version is listed, else 412 version_conflict. A weak tag
//     (W/"3") never matches, nor does any tag when there is no profile;
//   - If-Match: *: matches any existing profile (written on the version
//     read from the store), 412 when there is none.
//
// It answers 200 with the stored profile and its ETag, also for the
// creating PUT (the contract's one success code). The cache is refreshed
// on write: USERS gets the new version by compare-and-set, never replacing
// a newer one, and the L1s of users.get on the same host connection get
// it too, so a host reads its own writes at once. The L1 of other
// processes may lag a write by up to l1TTL; a client that PUTs with a
// stale ETag from there gets a 412, never a lost update.
//
// With route auth: user (Surge-User-Id present), another user's profile is
// 403 forbidden on both.
package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Bucket is the KV bucket of cached profiles, key u.<user_id>.
const Bucket = "USERS"

// Limits of a profile.
const (
	MaxNameLen = 64        // characters
	MaxLevel   = 1_000_000 // levels are small integers; the bound keeps them one
)

func init() {
	runtime.Register(runtime.Module{ID: "users.get", New: func() any { return new(Get) }})
	runtime.Register(runtime.Module{ID: "users.put", New: func() any { return new(Put) }})
}

// cache is the KV bucket in front of the store.
type cache struct {
	kv    jetstream.KeyValue
	store store.Profiles
}

func cacheKey(user int64) string { return "u." + strconv.FormatInt(user, 10) }

// get returns the cached profile, or ok false on a miss or a KV error (the
// cache is an optimisation: the caller reads the store).
func (c *cache) get(ctx context.Context, user int64) (p store.Profile, ok bool) {
	e, err := c.kv.Get(ctx, cacheKey(user))
	if err != nil {
		return p, false
	}
	return p, json.Unmarshal(e.Value(), &p) == nil && p.Version > 0
}

// put stores p in the bucket unless the bucket holds the same or a newer
// version: a compare-and-set on the key's revision, retried on conflict,
// so concurrent writers (and readers filling a miss) leave the newest
// version, whatever order their writes arrive in.
func (c *cache) put(ctx context.Context, p store.Profile) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	key := cacheKey(p.UserID)
	for range 8 {
		e, err := c.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = c.kv.Create(ctx, key, b)
		case err != nil:
			return err
		default:
			var cur store.Profile
			if json.Unmarshal(e.Value(), &cur) == nil && cur.Version >= p.Version {
				return nil
			}
			_, err = c.kv.Update(ctx, key, b, e.Revision())
		}
		if !runtime.IsKVConflict(err) {
			return err
		}
	}
	return fmt.Errorf("cache %s: too many concurrent writers", key)
}

func provision(env *runtime.Env) (*cache, error) {
	profiles, err := store.As[store.Profiles](env.Store)
	if err != nil {
		return nil, err
	}
	kv, err := env.KV(Bucket)
	if err != nil {
		return nil, err
	}
	return &cache{kv: kv, store: profiles}, nil
}

// userParam returns the user_id path parameter (Surge-Param-user_id), or
// ok false when the call has none (a direct NATS call with a JSON body).
func userParam(req *runtime.Request) (int64, bool, error) {
	v := req.Param("user_id")
	if v == "" {
		return 0, false, nil
	}
	id, err := parseUserID(v)
	return id, true, err
}

func parseUserID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, runtime.BadRequest("user_id", "must be a positive 64-bit integer")
	}
	return id, nil
}

// l1Key identifies the L1 shared by the users.get instances of one host
// (its NATS connection) with one config.
type l1Key struct {
	nc   *nats.Conn
	ttl  time.Duration
	size int
}

// l1s are the L1s of users.get, by l1Key, so that users.put on the same
// host can update them on write.
var l1s sync.Map // l1Key -> *runtime.Cache[int64, store.Profile]

// sharedL1 returns the L1 of key, made on first use.
func sharedL1(key l1Key, clock runtime.Clock) *runtime.Cache[int64, store.Profile] {
	c, _ := l1s.LoadOrStore(key, runtime.NewCache[int64, store.Profile](key.ttl, key.size, clock))
	return c.(*runtime.Cache[int64, store.Profile])
}

// wrote puts a profile just written into the host's L1s, unless one holds
// a newer version.
func wrote(nc *nats.Conn, p store.Profile) {
	l1s.Range(func(k, v any) bool {
		if k.(l1Key).nc == nc {
			c := v.(*runtime.Cache[int64, store.Profile])
			if cur, ok := c.Get(p.UserID); !ok || cur.Version < p.Version {
				c.Put(p.UserID, p)
			}
		}
		return true
	})
}

func etag(p store.Profile) string { return `"` + strconv.FormatInt(p.Version, 10) + `"` }

func respond(req *runtime.Request, p store.Profile) error {
	req.SetHeader("ETag", etag(p))
	return req.RespondJSON(http.StatusOK, p)
}

// Get is users.get.
type Get struct {
	// L1TTL is how long a profile is served from this process's memory
	// (default 250ms).
	L1TTL manifests.Duration `json:"l1TTL,omitempty"`
	// L1Size bounds how many profiles the L1 keeps (default 100000).
	L1Size int `json:"l1Size,omitempty"`

	cache *cache
	l1    *runtime.Cache[int64, store.Profile]
}

var (
	_ runtime.Handler     = (*Get)(nil)
	_ runtime.Provisioner = (*Get)(nil)
	_ runtime.Validator   = (*Get)(nil)
)

// Validate checks the config.
func (g *Get) Validate() error {
	if g.L1TTL < 0 || g.L1TTL.Std() > time.Minute {
		return fmt.Errorf("l1TTL: must be 0 (default 250ms) to 1m, got %s", g.L1TTL)
	}
	if g.L1Size < 0 {
		return fmt.Errorf("l1Size: must not be negative, got %d", g.L1Size)
	}
	return nil
}

// Provision binds the store, USERS and the L1.
func (g *Get) Provision(_ context.Context, env *runtime.Env) error {
	c, err := provision(env)
	if err != nil {
		return err
	}
	ttl, size := g.L1TTL.Std(), g.L1Size
	if ttl == 0 {
		ttl = 250 * time.Millisecond
	}
	if size == 0 {
		size = 100_000
	}
	g.cache, g.l1 = c, sharedL1(l1Key{env.NC, ttl, size}, env.Clock)
	return nil
}

// Handle reads one profile: L1, then USERS, then the store.
func (g *Get) Handle(ctx context.Context, req *runtime.Request) error {
	user, ok, err := userParam(req)
	if err != nil {
		return err
	}
	if !ok {
		var in struct {
			UserID int64 `json:"user_id"`
		}
		if err := runtime.DecodeJSON(req.Data, &in, ""); err != nil {
			return err
		}
		if in.UserID <= 0 {
			return runtime.BadRequest("user_id", "must be a positive 64-bit integer")
		}
		user = in.UserID
	}
	if err := req.AuthorizeUser(user); err != nil {
		return err
	}
	if p, ok := g.l1.Get(user); ok {
		return respond(req, p)
	}
	p, ok := g.cache.get(ctx, user)
	if !ok {
		switch p, err = g.cache.store.GetProfile(ctx, user); {
		case errors.Is(err, store.ErrNotFound):
			return runtime.Errorf(http.StatusNotFound, "user_not_found", "user %d has no profile", user)
		case err != nil:
			return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
				Msg: "the profile could not be read; retry", Err: err}
		}
		// A lost fill only costs the next miss a store read.
		_ = g.cache.put(ctx, p)
	}
	g.l1.Put(user, p)
	return respond(req, p)
}
