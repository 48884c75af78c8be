package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// OpenAPIVersion is the OpenAPI version of GET /openapi.json.
const OpenAPIVersion = "3.1.0"

// newOpenAPIHandler serves GET /openapi.json: the document of the routing
// table in use, built when the table was (openAPIDoc), so a request costs
// a pointer load and a write. It is public: it lists routes, not data.
func newOpenAPIHandler(table func() *Table) echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, table().openapi)
	}
}

// obj is a JSON object of the document.
type obj = map[string]any

const (
	errorRef  = "#/components/schemas/Error"
	anyRef    = "#/components/schemas/AnyJSON"
	queuedRef = "#/components/schemas/Queued"
)

// openAPIDoc builds the OpenAPI 3.1 document of t: the platform's own
// routes (health, metrics, admin, calls by name, call status) and every
// deployed route, with the request and answer schemas its function
// describes (runtime.HTTPDescriber), else a generic JSON body and answer.
// own are the routes the gateway's Echo serves itself: one that
// platformPaths does not describe is listed with a generic answer, so the
// document never leaves out a route.
func openAPIDoc(t *Table, own []*echo.Route) []byte {
	paths := platformPaths()
	for _, r := range own {
		p, ok := echoPath(r)
		if !ok {
			continue
		}
		item, _ := paths[p].(obj)
		if item == nil {
			item = obj{}
			paths[p] = item
		}
		if m := strings.ToLower(r.Method); item[m] == nil {
			item[m] = ownOperation(r.Method, p)
		}
	}
	schemas := obj{
		"Error":      runtime.SchemaOf(errorBody{}),
		"AnyJSON":    obj{"description": "any JSON value"},
		"Queued":     runtime.SchemaOf(queuedResponse{}),
		"CallStatus": callStatusSchema(),
	}
	for _, r := range t.Routes() {
		item, _ := paths[r.Pattern].(obj)
		if item == nil {
			item = obj{}
			paths[r.Pattern] = item
		}
		method := strings.ToLower(r.Method)
		if _, taken := item[method]; taken {
			continue // a platform route: Echo serves it before the table
		}
		item[method] = routeOperation(r, schemas)
	}
	doc := obj{
		"openapi": OpenAPIVersion,
		"info": obj{
			"title":       "surge",
			"version":     "v1",
			"description": "The routes of this surge gateway: its own and those of every deployed function, rebuilt on every deploy.",
		},
		"jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
		"paths":             paths,
		"components": obj{
			"schemas": schemas,
			"securitySchemes": obj{
				"adminToken": obj{"type": "http", "scheme": "bearer",
					"description": "the admin token (SURGE_ADMIN_TOKEN or <data>/admin-token)"},
				"userJWT": obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
					"description": "an end user's JWT; its sub claim is the decimal user_id"},
			},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic("gateway: openapi document: " + err.Error()) // only JSON-safe values go in
	}
	return b
}

// routeOperation is the operation of one deployed route. The schemas its
// function describes go into schemas under names from the function's
// (order-accept: OrderAcceptRequest, OrderAccept202), so generated clients
// get named types.
func routeOperation(r *Route, schemas obj) obj {
	tg := r.Target
	shape, described := runtime.DescribeHTTP(tg.Handler)
	summary := shape.Summary
	if summary == "" {
		summary = "function " + tg.Function
		if tg.Handler != "" {
			summary += " (handler " + tg.Handler + ")"
		}
	}
	op := obj{
		// Function names are lower case, and every operation id of the
		// platform's own has an upper-case letter: they never collide.
		"operationId": tg.Function,
		"summary":     summary,
		"tags":        []string{"functions"},
		"description": "Function " + tg.Function + ", handler " + tg.Handler + ", revision " + tg.Revision + ".",
	}
	params := []obj{}
	declared := map[string]runtime.Param{}
	for _, p := range shape.Params {
		declared[p.In+":"+p.Name] = p
	}
	for _, k := range r.keys {
		p, ok := declared["path:"+k]
		if !ok {
			p = runtime.Param{Name: k, In: "path"}
		}
		params = append(params, paramObject(p, true))
	}
	for _, p := range shape.Params {
		if p.In != "path" {
			params = append(params, paramObject(p, p.Required))
		}
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	switch {
	case described && shape.Request != nil:
		op["requestBody"] = obj{"required": true, "content": jsonContent(component(schemas, typeName(tg.Function)+"Request", shape.Request))}
	case !described && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodDelete:
		op["requestBody"] = obj{"content": jsonContent(obj{"$ref": anyRef})}
	}
	responses := obj{"default": errorResponse("an error")}
	switch {
	case r.Async:
		responses["202"] = queuedResponseObject()
	case described:
		for status, schema := range shape.Responses {
			code := strconv.Itoa(status)
			switch {
			case status >= 400 && schema == nil:
				responses[code] = errorResponse(http.StatusText(status))
			case schema == nil:
				responses[code] = obj{"description": http.StatusText(status)}
			default:
				responses[code] = obj{"description": http.StatusText(status),
					"content": jsonContent(component(schemas, typeName(tg.Function)+code, schema))}
			}
		}
	default:
		responses["200"] = obj{"description": "the function's answer", "content": jsonContent(obj{"$ref": anyRef})}
	}
	op["responses"] = responses
	switch tg.Auth {
	case manifests.AuthUser:
		op["security"] = []obj{{"userJWT": []string{}}}
		responses["401"] = errorResponse("no valid user token")
	case manifests.AuthAdmin:
		op["security"] = []obj{{"adminToken": []string{}}}
		responses["401"] = errorResponse("no valid admin token")
	}
	return op
}

// echoPath is the OpenAPI path of an Echo route (:name is {name}); ok is
// false for what a document cannot list: wildcards (the route table's
// catch-all, static files) and Echo's not-found routes.
func echoPath(r *echo.Route) (path string, ok bool) {
	switch r.Method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch:
	default:
		return "", false
	}
	if strings.Contains(r.Path, "*") {
		return "", false
	}
	segs := strings.Split(r.Path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/"), true
}

// ownOperation is the generic operation of a gateway route platformPaths
// does not describe.
func ownOperation(method, path string) obj {
	op := obj{
		"operationId": strings.ToLower(method) + typeName(strings.NewReplacer("/", "-", "{", "", "}", "", ".", "-").Replace(path)),
		"summary":     "platform route " + method + " " + path,
		"tags":        []string{"platform"},
		"responses": obj{"200": obj{"description": "the answer", "content": jsonContent(obj{"$ref": anyRef})},
			"default": errorResponse("an error")},
	}
	var params []obj
	for _, s := range strings.Split(path, "/") {
		if strings.HasPrefix(s, "{") {
			params = append(params, obj{"name": s[1 : len(s)-1], "in": "path", "required": true, "schema": obj{"type": "string"}})
		}
	}
	if params != nil {
		op["parameters"] = params
	}
	if strings.HasPrefix(path, "/admin/") {
		op["security"] = []obj{{"adminToken": []string{}}}
		op["responses"].(obj)["401"] = errorResponse("no valid admin token")
	}
	return op
}

// component adds schema to schemas under name and returns a reference to it.
func component(schemas obj, name string, schema runtime.Schema) obj {
	if _, taken := schemas[name]; taken {
		// Function names that map to one type name (a-1, a1): keep both.
		name += "_" + strconv.Itoa(len(schemas))
	}
	schemas[name] = schema
	return obj{"$ref": "#/components/schemas/" + name}
}

// typeName turns a function name into a type name: order-accept is
// OrderAccept.
func typeName(function string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(function, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func paramObject(p runtime.Param, required bool) obj {
	var schema any = obj{"type": "string"}
	if p.Schema != nil {
		schema = p.Schema
	}
	o := obj{"name": p.Name, "in": p.In, "schema": schema}
	if required || p.In == "path" {
		o["required"] = true
	}
	if p.Description != "" {
		o["description"] = p.Description
	}
	return o
}

func jsonContent(schema any) obj {
	return obj{echo.MIMEApplicationJSON: obj{"schema": schema}}
}

func errorResponse(description string) obj {
	return obj{"description": description, "content": jsonContent(obj{"$ref": errorRef})}
}

func queuedResponseObject() obj {
	return obj{
		"description": "queued: poll GET /calls/{id} with the X-Call-Id",
		"headers":     obj{"X-Call-Id": obj{"description": "the call's id", "schema": obj{"type": "string"}}},
		"content":     jsonContent(obj{"$ref": queuedRef}),
	}
}

// callStatusSchema is GET /calls/{id}'s answer, with the statuses spelt out.
func callStatusSchema() json.RawMessage {
	var s obj
	_ = json.Unmarshal(runtime.SchemaOf(wire.CallStatus{}), &s)
	props := s["properties"].(obj)
	props["status"] = obj{"type": "string", "enum": []string{wire.CallQueued, wire.CallRunning, wire.CallSucceeded, wire.CallFailed, wire.CallDead}}
	b, _ := json.Marshal(s)
	return b
}

// platformPaths are the gateway's own routes (gateway.echo).
func platformPaths() obj {
	admin := []obj{{"adminToken": []string{}}}
	nameParam := obj{"name": "name", "in": "path", "required": true,
		"schema": obj{"type": "string", "pattern": functionNamePattern}}
	fnParam := obj{"name": "function", "in": "path", "required": true, "schema": obj{"type": "string"}}
	ok := func(description string, schema any) obj {
		return obj{"description": description, "content": jsonContent(schema)}
	}
	adminOp := func(id, summary string, responses obj) obj {
		responses["401"] = errorResponse("no valid admin token")
		responses["default"] = errorResponse("an error")
		return obj{"operationId": id, "summary": summary, "tags": []string{"admin"}, "security": admin, "responses": responses}
	}
	anyBody := obj{"content": jsonContent(obj{"$ref": anyRef})}
	invoke := func(id, summary string, responses obj) obj {
		responses["default"] = errorResponse("an error, the function's or the platform's")
		return obj{"operationId": id, "summary": summary, "tags": []string{"invoke"}, "parameters": []obj{nameParam},
			"requestBody": anyBody, "responses": responses,
			// The function's spec.http.auth applies; one without a route takes the admin token.
			"security": []obj{{}, {"userJWT": []string{}}, {"adminToken": []string{}}}}
	}
	readyz := runtime.SchemaOf(struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}{})
	putManifest := adminOp("putFunction", "deploy a manifest (YAML or JSON); an unchanged one is a no-op", obj{
		"200": ok("deployed", runtime.SchemaOf(struct {
			Name     string `json:"name"`
			Revision string `json:"revision"`
			Seq      uint64 `json:"seq"`
			Changed  bool   `json:"changed"`
		}{})),
	})
	putManifest["parameters"] = []obj{nameParam}
	putManifest["requestBody"] = obj{"required": true, "content": obj{
		"application/yaml": obj{"schema": obj{"type": "string"}},
		"application/json": obj{"schema": obj{"type": "object"}},
	}}
	withParams := func(op obj, params ...obj) obj {
		op["parameters"] = params
		return op
	}
	query := func(name string, schema obj) obj { return obj{"name": name, "in": "query", "schema": schema} }
	return obj{
		"/healthz": obj{"get": obj{"operationId": "getHealthz", "summary": "the process is up", "tags": []string{"platform"},
			"responses": obj{"200": ok("up", runtime.SchemaOf(map[string]string{}))}}},
		"/readyz": obj{"get": obj{"operationId": "getReadyz", "summary": "200 only when NATS, JetStream, the store and the routes are ready", "tags": []string{"platform"},
			"responses": obj{"200": ok("ready", readyz), "503": ok("not ready: the failing checks", readyz)}}},
		"/metrics": obj{"get": obj{"operationId": "getMetrics", "summary": "Prometheus metrics", "tags": []string{"platform"},
			"responses": obj{"200": obj{"description": "Prometheus text format", "content": obj{"text/plain": obj{"schema": obj{"type": "string"}}}}}}},
		"/openapi.json": obj{"get": obj{"operationId": "getOpenAPI", "summary": "this document", "tags": []string{"platform"},
			"responses": obj{"200": ok("the OpenAPI document", obj{"type": "object"})}}},
		"/console": obj{"get": obj{"operationId": "getConsole", "summary": "the web console (its data comes from /admin/overview)", "tags": []string{"platform"},
			"responses": obj{"200": obj{"description": "the page", "content": obj{"text/html": obj{"schema": obj{"type": "string"}}}}}}},
		"/admin/overview": obj{"get": adminOp("getOverview", "what the console shows: functions, consumers, dead letters, hosts, deploy history", obj{
			"200": ok("the overview", runtime.SchemaOf(Overview{}))})},
		"/admin/functions": obj{"get": adminOp("listFunctions", "the deployed functions", obj{
			"200": ok("the functions", runtime.SchemaOf(struct {
				Functions []FunctionInfo `json:"functions"`
				Hosts     int            `json:"hosts"`
			}{}))})},
		"/admin/functions/{name}": obj{
			"get":    withParams(adminOp("getFunction", "one function, its manifest and instances", obj{"200": ok("the function", runtime.SchemaOf(FunctionInfo{}))}), nameParam),
			"put":    putManifest,
			"delete": withParams(adminOp("deleteFunction", "remove a function", obj{"204": obj{"description": "removed"}}), nameParam),
		},
		"/admin/functions/{name}/creds": obj{"post": withParams(adminOp("functionCreds", "NATS credentials for the external function", obj{
			"200": obj{"description": "a NATS credentials file", "content": obj{"text/plain": obj{"schema": obj{"type": "string"}}}}}), nameParam)},
		"/admin/dlq": obj{"get": withParams(adminOp("listDeadLetters", "a page of a function's dead letters", obj{
			"200": ok("the page", runtime.SchemaOf(DLQPage{}))}),
			obj{"name": "function", "in": "query", "required": true, "schema": obj{"type": "string"}},
			query("limit", obj{"type": "integer", "minimum": 1, "maximum": dlqMaxLimit}),
			query("after", obj{"type": "integer", "minimum": 0}))},
		"/admin/dlq/{function}/replay": obj{"post": func() obj {
			op := withParams(adminOp("replayDeadLetters", "replay all dead letters, or those of {\"seq\":[...]}", obj{
				"200": ok("what was replayed", runtime.SchemaOf(ReplayReport{}))}), fnParam)
			op["requestBody"] = obj{"content": jsonContent(runtime.SchemaOf(struct {
				Seq []uint64 `json:"seq,omitempty"`
			}{}))}
			return op
		}()},
		"/admin/dlq/{function}/{seq}": obj{"delete": withParams(adminOp("deleteDeadLetter", "discard one dead letter", obj{
			"204": obj{"description": "discarded"}}), fnParam,
			obj{"name": "seq", "in": "path", "required": true, "schema": obj{"type": "integer", "minimum": 1}})},
		"/function/{name}": obj{"post": invoke("invokeSync", "call a function by name and wait for its answer", obj{
			"200": ok("the function's answer", obj{"$ref": anyRef})})},
		"/async-function/{name}": obj{"post": invoke("invokeAsync", "queue a call of a function by name", obj{
			"202": queuedResponseObject()})},
		"/calls/{id}": obj{"get": obj{"operationId": "callStatus", "summary": "the status and result of an async call", "tags": []string{"invoke"},
			"parameters": []obj{{"name": "id", "in": "path", "required": true, "schema": obj{"type": "string", "pattern": callIDPattern.String()}}},
			"security":   []obj{{}, {"userJWT": []string{}}, {"adminToken": []string{}}},
			"responses": obj{"200": ok("the call", obj{"$ref": "#/components/schemas/CallStatus"}),
				"404": errorResponse("no such call"), "default": errorResponse("an error")}}},
	}
}

// functionNamePattern is what metadata.name may be (manifests validates it).
const functionNamePattern = `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`
