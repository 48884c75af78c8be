package gateway

// LeaderCallStatus is leaderCallStatus, for the tests of package gateway_test.
var LeaderCallStatus = leaderCallStatus

// OwnRoutes lists the routes g's Echo serves itself as "METHOD path" in
// OpenAPI syntax, those a document can list.
func OwnRoutes(g *Gateway) []string {
	var out []string
	for _, r := range g.e.Routes() {
		if p, ok := echoPath(r); ok {
			out = append(out, r.Method+" "+p)
		}
	}
	return out
}
