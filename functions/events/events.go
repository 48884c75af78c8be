// Package events is the built-in behaviour tracking: events.ingest takes
// events over HTTP and queues them on the EVENTS stream; events.aggregate
// consumes that stream (where clients may also publish directly, docs/API.md
// section 4), counts events per item and type in the store, exactly once
// per stream message, and mirrors each item's totals into a KV bucket;
// events.stats (GET /v1/items/{item_id}/stats) reads them back.
//
// The manifests are manifests/events.yaml.
package events

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

func init() {
	runtime.Register(runtime.Module{ID: "events.ingest", New: func() any { return new(Ingest) }})
	runtime.Register(runtime.Module{ID: "events.aggregate", New: func() any { return new(Aggregate) }})
	runtime.Register(runtime.Module{ID: "events.stats", New: func() any { return new(Stats) }})
}

// Subject and bucket names shared with the manifests, and limits.
const (
	// SubjectTrack is where events are published, one event or an array per
	// message, captured by the EVENTS stream that manifests/events.yaml declares.
	SubjectTrack = "events.track"
	// BucketStats is the KV bucket holding each item's totals.
	BucketStats = "ITEM_STATS"
	// MaxEvents is the most events one message (or POST) may carry.
	MaxEvents = 1000
	// MaxItemIDLen is the longest item_id, in characters.
	MaxItemIDLen = 64
)

// Event types.
const (
	TypeView  = "view"
	TypeClick = "click"
	TypeCart  = "cart"
	TypeBuy   = "buy"
)

// Event is one behaviour event.
type Event struct {
	UserID int64  `json:"user_id" jsonschema:"minimum=1"`
	Type   string `json:"type" jsonschema:"enum=view|click|cart|buy"`
	ItemID string `json:"item_id" jsonschema:"minLength=1;maxLength=64"`
	TS     string `json:"ts" jsonschema:"format=date-time"`
}

// validate checks e; field prefixes the field names in errors ("" or "[3]").
func (e *Event) validate(prefix string) error {
	f := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	switch {
	case e.UserID <= 0:
		return runtime.BadRequest(f("user_id"), "must be a positive integer, got %d", e.UserID)
	case e.Type == "":
		return runtime.BadRequest(f("type"), "required")
	case e.Type != TypeView && e.Type != TypeClick && e.Type != TypeCart && e.Type != TypeBuy:
		return runtime.BadRequest(f("type"), "must be one of view, click, cart, buy, got %q", e.Type)
	}
	if err := checkItemID(e.ItemID); err != nil {
		return runtime.BadRequest(f("item_id"), "%s", err.Error())
	}
	if e.TS == "" {
		return runtime.BadRequest(f("ts"), "required")
	}
	if _, err := time.Parse(time.RFC3339, e.TS); err != nil {
		return runtime.BadRequest(f("ts"), "must be an RFC 3339 time like 2024-05-01T12:00:00Z, got %q", e.TS)
	}
	return nil
}

// errItemID explains what an item id must be.
var errItemID = errors.New("must be 1 to 64 characters of valid UTF-8 without control characters")

// checkItemID accepts 1 to MaxItemIDLen printable UTF-8 characters.
func checkItemID(id string) error {
	if id == "" || !utf8.ValidString(id) || utf8.RuneCountInString(id) > MaxItemIDLen ||
		strings.ContainsFunc(id, unicode.IsControl) {
		return errItemID
	}
	return nil
}

// Parse decodes and validates one message or request body: one event
// object or an array of 1 to MaxEvents of them. Unknown fields are
// refused. Errors are 400s naming the field, like "[3].type".
func Parse(data []byte) ([]Event, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, runtime.BadRequest("", "empty body: want an event object or an array of events")
	}
	if data[0] != '[' {
		var e Event
		if err := runtime.DecodeJSON(data, &e, ""); err != nil {
			return nil, err
		}
		if err := e.validate(""); err != nil {
			return nil, err
		}
		return []Event{e}, nil
	}
	// Fast path: one decoding pass. Only when it fails is the body decoded
	// again element by element, to name the index at fault.
	var out []Event
	if err := runtime.DecodeJSON(data, &out, ""); err != nil {
		return nil, arrayError(data, err)
	}
	switch {
	case len(out) == 0:
		return nil, runtime.BadRequest("", "empty array: want 1 to %d events", MaxEvents)
	case len(out) > MaxEvents:
		return nil, runtime.BadRequest("", "%d events: at most %d per request", len(out), MaxEvents)
	}
	for i := range out {
		if err := out[i].validate("[" + strconv.Itoa(i) + "]"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// arrayError finds which element of an array body made decoding fail, and
// names it ("[3].user_id"); err is the whole-body error, used when the
// body is not even an array.
func arrayError(data []byte, err error) error {
	var raw []json.RawMessage
	if rerr := runtime.DecodeJSON(data, &raw, ""); rerr != nil {
		return rerr
	}
	for i, r := range raw {
		var e Event
		if eerr := runtime.DecodeJSON(r, &e, "["+strconv.Itoa(i)+"]"); eerr != nil {
			return eerr
		}
	}
	return err
}

// Count folds events into per-item counters by type. Events must be valid.
func Count(evs []Event, into map[string]store.Counts) {
	for _, e := range evs {
		c := into[e.ItemID]
		switch e.Type {
		case TypeView:
			c.View++
		case TypeClick:
			c.Click++
		case TypeCart:
			c.Cart++
		case TypeBuy:
			c.Buy++
		}
		into[e.ItemID] = c
	}
}

// plainKeyRE is what an item id may hold to be used as is in a KV key.
var plainKeyRE = regexp.MustCompile(`^[-_=A-Za-z0-9]+$`)

// StatsKey is the KV key of an item's totals: "i.<item_id>" when the id
// only holds [-_=A-Za-z0-9], else "x.<hex of the id>" — KV keys allow few
// characters, and '.' and '/' would split or empty key tokens. The two
// prefixes keep the encodings from colliding.
func StatsKey(itemID string) string {
	if plainKeyRE.MatchString(itemID) {
		return "i." + itemID
	}
	return "x." + hex.EncodeToString([]byte(itemID))
}
