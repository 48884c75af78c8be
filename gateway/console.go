package gateway

import (
	"embed"
	"io/fs"
	"net/http"
	"path"

	"github.com/labstack/echo/v4"

	"github.com/surgefn/surge/runtime"
)

// consoleFiles are the console's page and assets, built into the binary:
// plain HTML, CSS and JavaScript, so neither make run nor a release needs
// a front-end toolchain.
//
//go:embed console/index.html console/console.css console/console.js
var consoleFiles embed.FS

// consoleTypes are the content types of the console's files.
var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
}

// consoleCSP allows the page nothing but its own files and its own API:
// no inline script, no other origin, no framing.
const consoleCSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// newConsoleHandler serves GET /console (the page) and GET /console/{file}
// (its assets). The page itself holds no secret; it signs in against the
// admin API with the token the user types.
func newConsoleHandler() echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("*")
		if name == "" || name == "index.html" {
			name = "index.html"
		}
		b, err := fs.ReadFile(consoleFiles, path.Join("console", path.Clean("/"+name)))
		typ, known := consoleTypes[path.Ext(name)]
		if err != nil || !known {
			return runtime.Errorf(http.StatusNotFound, "not_found", "the console has no file %s", name)
		}
		h := c.Response().Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set(echo.HeaderCacheControl, "no-cache")
		return c.Blob(http.StatusOK, typ, b)
	}
}
