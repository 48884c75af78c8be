//go:build !novitess

package all

import (
	_ "github.com/surgefn/surge/runtime/store/vitess"
)
