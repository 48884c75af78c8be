package users

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Put is users.put.
type Put struct {
	cache *cache
	clock runtime.Clock
	nc    *nats.Conn // the host's, whose users.get L1s a write updates
}

var (
	_ runtime.Handler     = (*Put)(nil)
	_ runtime.Provisioner = (*Put)(nil)
)

// Provision binds the store, USERS and the clock.
func (p *Put) Provision(_ context.Context, env *runtime.Env) error {
	c, err := provision(env)
	if err != nil {
		return err
	}
	p.cache, p.clock, p.nc = c, env.Clock, env.NC
	return nil
}

// putBody is the body of PUT /v1/users/{user_id}; user_id is only read
// from it on a direct NATS call without the path parameter.
type putBody struct {
	UserID *int64  `json:"user_id,omitempty" jsonschema:"minimum=1;description=only on a NATS call without the path"`
	Name   *string `json:"name" jsonschema:"required;minLength=1;maxLength=64"`
	Level  *int    `json:"level" jsonschema:"required;minimum=0;maximum=1000000"`
}

// decodePut validates the call and returns the profile to write.
func decodePut(req *runtime.Request) (store.Profile, error) {
	user, fromPath, err := userParam(req)
	if err != nil {
		return store.Profile{}, err
	}
	var in putBody
	if err := runtime.DecodeJSON(req.Data, &in, ""); err != nil {
		return store.Profile{}, err
	}
	switch {
	case fromPath && in.UserID != nil:
		return store.Profile{}, runtime.BadRequest("user_id", "unknown field (the user is in the path)")
	case !fromPath && in.UserID == nil:
		return store.Profile{}, runtime.BadRequest("user_id", "required")
	case !fromPath:
		if user, err = parseUserID(strconv.FormatInt(*in.UserID, 10)); err != nil {
			return store.Profile{}, err
		}
	}
	switch {
	case in.Name == nil:
		return store.Profile{}, runtime.BadRequest("name", "required")
	case !validName(*in.Name):
		return store.Profile{}, runtime.BadRequest("name", "must be 1 to %d characters of UTF-8 without control characters", MaxNameLen)
	case in.Level == nil:
		return store.Profile{}, runtime.BadRequest("level", "required")
	case *in.Level < 0 || *in.Level > MaxLevel:
		return store.Profile{}, runtime.BadRequest("level", "must be an integer from 0 to %d", MaxLevel)
	}
	return store.Profile{UserID: user, Name: *in.Name, Level: *in.Level}, nil
}

func validName(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNameLen || strings.TrimSpace(s) == "" {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// ifMatch is a parsed If-Match header.
type ifMatch struct {
	present  bool
	any      bool    // *
	versions []int64 // strong tags; weak ones never match and are dropped
}

// parseIfMatch reads If-Match: absent, *, or a list of entity tags whose
// opaque part is a version ("3", W/"3").
func parseIfMatch(h string) (ifMatch, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return ifMatch{}, nil
	}
	if h == "*" {
		return ifMatch{present: true, any: true}, nil
	}
	m := ifMatch{present: true}
	for tag := range strings.SplitSeq(h, ",") {
		tag = strings.TrimSpace(tag)
		weak := strings.HasPrefix(tag, "W/")
		tag = strings.TrimPrefix(tag, "W/")
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(tag, `"`), `"`), 10, 64)
		if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' || err != nil || v < 0 {
			return ifMatch{}, runtime.BadRequest("If-Match", `must be * or entity tags "<version>"`)
		}
		if !weak && v > 0 {
			m.versions = append(m.versions, v)
		}
	}
	return m, nil
}

// Handle writes one profile under its precondition.
func (p *Put) Handle(ctx context.Context, req *runtime.Request) error {
	prof, err := decodePut(req)
	if err != nil {
		return err
	}
	if err := req.AuthorizeUser(prof.UserID); err != nil {
		return err
	}
	cond, err := parseIfMatch(req.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	expect, err := p.expected(ctx, prof.UserID, cond)
	if err != nil {
		return err
	}
	prof.UpdatedAt = p.clock.Now().UTC()
	stored, err := p.cache.store.PutProfile(ctx, prof, expect)
	switch {
	case errors.Is(err, store.ErrVersionConflict) && !cond.present:
		return runtime.Errorf(http.StatusPreconditionRequired, "precondition_required",
			`the profile exists (version %d): send If-Match: "%d"`, stored.Version, stored.Version)
	case errors.Is(err, store.ErrVersionConflict):
		return conflict(stored.Version)
	case err != nil:
		return &runtime.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
			Msg: "the profile could not be written; retry", Err: err}
	}
	// The store decided; a failed refresh leaves an older version in
	// USERS, so drop the key rather than serve it until its TTL.
	if err := p.cache.put(ctx, stored); err != nil {
		_ = p.cache.kv.Delete(ctx, cacheKey(stored.UserID))
	}
	wrote(p.nc, stored)
	return respond(req, stored)
}

// expected returns the version the write must find: 0 (none) without
// If-Match, the listed version, or the stored one when it is listed or
// the header is *; a precondition that already fails is a 412.
func (p *Put) expected(ctx context.Context, user int64, cond ifMatch) (int64, error) {
	if !cond.present {
		return 0, nil
	}
	if !cond.any && len(cond.versions) == 1 {
		return cond.versions[0], nil // the store checks it
	}
	cur, err := p.cache.store.GetProfile(ctx, user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, conflict(0)
	case err != nil:
		return 0, &runtime.Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
			Msg: "the profile could not be read; retry", Err: err}
	}
	if cond.any {
		return cur.Version, nil
	}
	for _, v := range cond.versions {
		if v == cur.Version {
			return v, nil
		}
	}
	return 0, conflict(cur.Version)
}

func conflict(current int64) error {
	if current == 0 {
		return runtime.Errorf(http.StatusPreconditionFailed, "version_conflict", "the user has no profile yet: send no If-Match to create it")
	}
	return runtime.Errorf(http.StatusPreconditionFailed, "version_conflict", "the profile is at version %d", current)
}
