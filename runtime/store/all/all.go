// Package all imports every store backend surge ships so that each
// registers itself; internal/platform imports it for its side effects.
package all

import (
	_ "github.com/surgefn/surge/runtime/store/buntstore"
	_ "github.com/surgefn/surge/runtime/store/vitess"
)
