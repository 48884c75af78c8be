package runtime

import "github.com/surgefn/surge/runtime/wire"

// The headers a function reads or sets itself. The others, and the rest of
// the wire format, are in package runtime/wire.
const (
	// HeaderIdempotencyKey is the caller's idempotency key.
	HeaderIdempotencyKey = wire.HeaderIdempotencyKey
	// HeaderMsgID is JetStream's de-duplication header, for a function's own publishes.
	HeaderMsgID = wire.HeaderMsgID
	// HeaderContentType is the content type of the body.
	HeaderContentType = wire.HeaderContentType
	// HeaderRetryAfter tells an overloaded or rate-limited caller when to retry.
	HeaderRetryAfter = wire.HeaderRetryAfter
)
