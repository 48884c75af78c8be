package runtime

import (
	"net/http"
	"strconv"

	"github.com/surgefn/surge/runtime/wire"
)

// HeaderUserID is the end user the gateway authenticated (a route with
// spec.http.auth: user): the decimal sub claim of the verified JWT.
const HeaderUserID = wire.HeaderUserID

// UserID returns the end user the gateway authenticated for this call, and
// whether the call names one at all. A call without the header (a route
// with spec.http.auth: none, or a direct NATS request) reports ok false: it
// carries no end-user identity to check against, and NATS access itself is
// governed by the NATS credentials. A header that is not a positive
// decimal int64 reports 0 and ok true, so AuthorizeUser refuses every user.
func (r *Request) UserID() (id int64, ok bool) {
	v, ok := r.Header[wire.HeaderUserID]
	if !ok || len(v) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil || n <= 0 {
		return 0, true
	}
	return n, true
}

// AuthorizeUser is the object-level check of a function that acts on the
// data of user userID (a user_id in the body or path): nil when the call
// names no authenticated user (see UserID) or names userID, else a 403
// forbidden *Error. A function hiding whether an object exists answers 404
// itself instead, as it would for a missing one.
func (r *Request) AuthorizeUser(userID int64) error {
	id, ok := r.UserID()
	if !ok || id > 0 && id == userID {
		return nil
	}
	return Forbidden("user_id %d is not the signed-in user", userID)
}

// Forbidden returns a 403 forbidden: the caller is authenticated but may
// not do this.
func Forbidden(format string, args ...any) *Error {
	return Errorf(http.StatusForbidden, "forbidden", format, args...)
}
