package manifests

import "strings"

// Key is the route's identity: the method and the path with parameter
// names erased, so GET /a/{x} and GET /a/{y} are one route. Two functions
// with the same Key would serve the same requests.
func (h *HTTP) Key() string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(h.Method))
	b.WriteByte(' ')
	for _, s := range strings.Split(strings.Trim(h.Path, "/"), "/") {
		b.WriteByte('/')
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			b.WriteString("{}")
		} else {
			b.WriteString(s)
		}
	}
	return b.String()
}

// Route is the route as its manifest writes it, METHOD PATH.
func (h *HTTP) Route() string { return strings.ToUpper(h.Method) + " " + h.Path }
