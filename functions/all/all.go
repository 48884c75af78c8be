// Package all imports every built-in function so that each registers its
// module; cmd/surge imports it for its side effects.
package all

import (
	_ "github.com/surgefn/surge/functions/echo"
	_ "github.com/surgefn/surge/functions/envelopes"
	_ "github.com/surgefn/surge/functions/events"
	_ "github.com/surgefn/surge/functions/orders"
	_ "github.com/surgefn/surge/functions/sales"
	_ "github.com/surgefn/surge/functions/signin"
	_ "github.com/surgefn/surge/functions/sms"
	_ "github.com/surgefn/surge/functions/users"
)
