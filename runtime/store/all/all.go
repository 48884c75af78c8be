// Package all imports every store backend surge ships so that each
// registers itself; internal/platform imports it for its side effects.
//
// The Vitess backend brings the vtgate client and gRPC with it; a binary
// that never uses it can leave it out with the build tag novitess
// (go build -tags novitess ./cmd/surge), see vitess.go.
package all

import (
	_ "github.com/surgefn/surge/runtime/store/buntstore"
)
