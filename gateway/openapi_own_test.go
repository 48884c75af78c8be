package gateway

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestOpenAPIListsUndescribedOwnRoutes checks that a route the gateway
// serves itself without a hand-written description is still listed, with
// its path parameters and, under /admin, the admin scheme, while
// wildcards and Echo's not-found routes are not.
func TestOpenAPIListsUndescribedOwnRoutes(t *testing.T) {
	e := echo.New()
	ok := func(c echo.Context) error { return c.NoContent(http.StatusOK) }
	e.GET("/admin/things/:id", ok)
	e.POST("/status", ok)
	e.GET("/files/*", ok)
	e.Group("/admin", func(next echo.HandlerFunc) echo.HandlerFunc { return next })
	tbl, _ := Build(nil)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string             `json:"operationId"`
			Parameters  []map[string]any   `json:"parameters"`
			Security    []map[string][]any `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc(tbl, e.Routes()), &doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, method string
		wantID       string
		wantParams   int
		wantAdmin    bool
	}{
		{path: "/admin/things/{id}", method: "get", wantID: "getAdminThingsId", wantParams: 1, wantAdmin: true},
		{path: "/status", method: "post", wantID: "postStatus"},
		{path: "/healthz", method: "get", wantID: "getHealthz"}, // described: kept as it is
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			op, found := doc.Paths[tt.path][tt.method]
			if !found {
				t.Fatalf("%s %s not listed", tt.method, tt.path)
			}
			admin := len(op.Security) == 1 && op.Security[0]["adminToken"] != nil
			if op.OperationID != tt.wantID || len(op.Parameters) != tt.wantParams || admin != tt.wantAdmin {
				t.Errorf("operation = %+v, want id %s, %d parameters, admin %v", op, tt.wantID, tt.wantParams, tt.wantAdmin)
			}
		})
	}
	for p := range doc.Paths {
		if p == "/files/*" || p == "/files/" || p == "/admin" || p == "/admin/*" {
			t.Errorf("listed %s", p)
		}
	}
}
