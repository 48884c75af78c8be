package manifests

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

var (
	dnsLabelRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	handlerRE   = regexp.MustCompile(`^[a-z][a-z0-9_.-]*$`)
	nameRE      = regexp.MustCompile(`^[A-Za-z0-9_-]+$`) // streams, queues, buckets
	paramRE     = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	pathSegRE   = regexp.MustCompile(`^[A-Za-z0-9._~:@!$&'()+,;=-]+$`)
	httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	asyncMethod = []string{"POST", "PUT", "PATCH"}
)

// reservedPrefixes are the gateway's own first path segments.
var reservedPrefixes = []string{"admin", "healthz", "readyz", "metrics", "openapi.json", "function", "async-function", "calls", "console"}

// checks collects the problems of one function in field order.
type checks struct{ errs []error }

func (c *checks) add(path string, sentinel error, format string, args ...any) {
	c.errs = append(c.errs, fieldErr(path, sentinel, fmt.Sprintf(format, args...)))
}

// put records err unless it is nil.
func (c *checks) put(err error) {
	if err != nil {
		c.errs = append(c.errs, err)
	}
}

func (c *checks) equal(path, got, want string) {
	switch got {
	case want:
	case "":
		c.add(path, ErrRequired, "required")
	default:
		c.add(path, ErrInvalid, "must be %q, got %q", want, got)
	}
}

func (c *checks) name(path, name string) {
	switch {
	case name == "":
		c.add(path, ErrRequired, "required")
	case len(name) > 63:
		c.add(path, ErrInvalid, "invalid name %q: longer than 63 characters", name)
	case !dnsLabelRE.MatchString(name):
		c.add(path, ErrInvalid, "invalid name %q: use lowercase letters, digits and '-', starting and ending with a letter or digit", name)
	}
}

func (c *checks) handler(path, id string) {
	switch {
	case id == "":
		c.add(path, ErrRequired, "required")
	case id != HandlerExternal && !handlerRE.MatchString(id):
		c.add(path, ErrInvalid, "invalid handler id %q: use lowercase letters, digits, '_', '.' and '-', starting with a letter", id)
	}
}

func (c *checks) trigger(path string, t Trigger) {
	switch {
	case t.Subject == "" && t.Stream == "":
		c.add(path, ErrRequired, "one of subject or stream is required")
	case t.Subject != "" && t.Stream != "":
		c.add(path, ErrInvalid, "subject and stream are mutually exclusive")
	}
	if t.Subject != "" {
		c.put(checkSubject(path+".subject", t.Subject, false))
	}
	if t.Stream != "" && !nameRE.MatchString(t.Stream) {
		c.add(path+".stream", ErrInvalid, "invalid stream name %q: use letters, digits, '_' and '-'", t.Stream)
	}
	if t.Filter != "" {
		if t.Stream == "" {
			c.add(path+".filter", ErrInvalid, "only allowed with stream")
		}
		c.put(checkSubject(path+".filter", t.Filter, true))
	}
}

// checkSubject checks a NATS subject: '.'-separated non-empty tokens, no
// whitespace; with wildcards, '*' as a whole token and '>' as the last one.
func checkSubject(path, subj string, wildcards bool) error {
	bad := func(why string) error {
		return fieldErr(path, ErrInvalid, fmt.Sprintf("invalid subject %q: %s", subj, why))
	}
	if strings.ContainsAny(subj, " \t\r\n") {
		return bad("contains whitespace")
	}
	tokens := strings.Split(subj, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return bad("empty token")
		case !strings.ContainsAny(tok, "*>"):
		case !wildcards:
			return bad("wildcards are not allowed here")
		case tok == "*", tok == ">" && i == len(tokens)-1:
		case tok == ">":
			return bad("'>' must be the last token")
		default:
			return bad("a wildcard must be a whole token")
		}
	}
	return nil
}

func (c *checks) http(path string, h *HTTP) {
	switch {
	case h.Method == "":
		c.add(path+".method", ErrRequired, "required")
	case !slices.Contains(httpMethods, h.Method):
		c.add(path+".method", ErrInvalid, "must be one of %s, got %q", strings.Join(httpMethods, ", "), h.Method)
	}
	c.put(checkRoute(path+".path", h.Path))
	if h.Async && h.Method != "" && !slices.Contains(asyncMethod, h.Method) {
		c.add(path+".async", ErrInvalid, "only allowed with POST, PUT or PATCH, not %s", h.Method)
	}
	if !slices.Contains(authModes, h.Auth) {
		c.add(path+".auth", ErrInvalid, "must be one of %s, got %q", strings.Join(authModes, ", "), h.Auth)
	}
}

// checkRoute checks a gateway route: absolute, non-empty segments, each a
// literal or a whole {param}, and outside the gateway's own paths.
func checkRoute(path, route string) error {
	bad := func(format string, args ...any) error {
		return fieldErr(path, ErrInvalid, fmt.Sprintf("invalid path %q: ", route)+fmt.Sprintf(format, args...))
	}
	if route == "" {
		return fieldErr(path, ErrRequired, "required")
	}
	if !strings.HasPrefix(route, "/") {
		return bad("must start with '/'")
	}
	segs := strings.Split(route[1:], "/")
	if slices.Contains(reservedPrefixes, segs[0]) {
		return bad("/%s is reserved by the platform", segs[0])
	}
	params := map[string]bool{}
	for _, seg := range segs {
		switch {
		case seg == "":
			return bad("empty segment")
		case strings.Contains(seg, "*"):
			return bad("wildcards are not allowed")
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			p := seg[1 : len(seg)-1]
			if !paramRE.MatchString(p) {
				return bad("parameter name %q must match [a-z_][a-z0-9_]*", p)
			}
			if params[p] {
				return bad("duplicate parameter %q", p)
			}
			params[p] = true
		case strings.ContainsAny(seg, "{}"):
			return bad("a parameter must be a whole segment, like {name}")
		case seg == "." || seg == "..":
			return bad("dot segments are not allowed")
		case !pathSegRE.MatchString(seg):
			return bad("segment %q has characters that need escaping", seg)
		}
	}
	return nil
}

// listName checks the name of one bucket or stream in a list: required,
// letters, digits, '_' and '-', and not in seen, which it joins.
func (c *checks) listName(path, kind, name string, seen map[string]bool) {
	switch {
	case name == "":
		c.add(path, ErrRequired, "required")
	case !nameRE.MatchString(name):
		c.add(path, ErrInvalid, "invalid %s name %q: use letters, digits, '_' and '-'", kind, name)
	case seen[name]:
		c.add(path, ErrInvalid, "duplicate %s %q", kind, name)
	}
	seen[name] = true
}

func (c *checks) kv(path string, buckets []KVBucket) {
	seen := map[string]bool{}
	for i, b := range buckets {
		p := indexPath(path, i)
		c.listName(p+".bucket", "bucket", b.Bucket, seen)
		if b.TTL < 0 {
			c.add(p+".ttl", ErrInvalid, "must not be negative, got %s", b.TTL)
		}
		if b.History < 0 || b.History > MaxKVHistory {
			c.add(p+".history", ErrInvalid, "must be between 1 and %d, got %d", MaxKVHistory, b.History)
		}
		if b.Storage != "" && b.Storage != StorageFile && b.Storage != StorageMemory {
			c.add(p+".storage", ErrInvalid, "must be %q or %q, got %q", StorageFile, StorageMemory, b.Storage)
		}
	}
}

func (c *checks) publishes(path string, streams []Stream) {
	seen := map[string]bool{}
	for i, st := range streams {
		p := indexPath(path, i)
		c.listName(p+".stream", "stream", st.Stream, seen)
		if len(st.Subjects) == 0 {
			c.add(p+".subjects", ErrRequired, "required")
		}
		subjects := map[string]bool{}
		for j, sub := range st.Subjects {
			sp := indexPath(p+".subjects", j)
			if subjects[sub] {
				c.add(sp, ErrInvalid, "duplicate subject %q", sub)
				continue
			}
			subjects[sub] = true
			if err := checkSubject(sp, sub, true); err != nil {
				c.put(err)
				continue
			}
			// A stream refuses subjects that overlap (x.* and x.a).
			for _, prev := range st.Subjects[:j] {
				if prev != sub && (SubjectCovers(prev, sub) || SubjectCovers(sub, prev)) {
					c.add(sp, ErrInvalid, "subject %q overlaps %q of the same stream; keep the broader one", sub, prev)
					break
				}
			}
		}
		if st.MaxAge < 0 && st.MaxAge != Unlimited {
			c.add(p+".maxAge", ErrInvalid, "must not be negative, got %s", time.Duration(st.MaxAge))
		}
		switch w := time.Duration(st.DuplicateWindow); {
		case w < 0:
			c.add(p+".duplicateWindow", ErrInvalid, "must not be negative, got %s", w)
		case w > 0 && w < MinDuplicateWindow:
			// JetStream refuses a shorter one.
			c.add(p+".duplicateWindow", ErrInvalid, "must be at least %s (or 0 for the default), got %s", MinDuplicateWindow, w)
		case w > 0 && st.MaxAge > 0 && w > time.Duration(st.MaxAge):
			// JetStream refuses a window longer than the stream keeps messages.
			c.add(p+".duplicateWindow", ErrInvalid, "must not be longer than maxAge %s, got %s", st.MaxAge, w)
		}
	}
}

// ValidName reports whether name can be a function's metadata.name: a DNS
// label of at most 63 characters, so also a single NATS subject token.
func ValidName(name string) bool { return len(name) <= 63 && dnsLabelRE.MatchString(name) }
