package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// docURL is where the embedded OpenAPI document is registered with the
// schema compiler; schemas are compiled as docURL + "#" + JSON pointer.
const docURL = "https://imaged.test/openapi.json"

// oasSchemaURL is the $id of the official OpenAPI 3.1 schema kept in
// testdata (from the OpenAPI Initiative, Apache-2.0).
const oasSchemaURL = "https://spec.openapis.org/oas/3.1/schema/2022-10-07"

// apiDoc is the OpenAPI document, parsed, with a cache of compiled schemas.
// Every handler test checks its answers against it through checkResponse.
type apiDoc struct {
	root     map[string]any
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

var (
	docOnce sync.Once
	docVal  *apiDoc
	docErr  error
)

// loadDoc parses the embedded OpenAPI bytes once for the whole test binary.
func loadDoc(t testing.TB) *apiDoc {
	t.Helper()
	docOnce.Do(func() {
		var root map[string]any
		if err := json.Unmarshal(OpenAPI, &root); err != nil {
			docErr = fmt.Errorf("openapi.json is not valid JSON: %w", err)
			return
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(OpenAPI))
		if err != nil {
			docErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		if err := c.AddResource(docURL, inst); err != nil {
			docErr = err
			return
		}
		docVal = &apiDoc{root: root, compiler: c, schemas: map[string]*jsonschema.Schema{}}
	})
	if docErr != nil {
		t.Fatal(docErr)
	}
	return docVal
}

// schema compiles (once) the schema at a JSON pointer of the document.
func (d *apiDoc) schema(t testing.TB, ptr string) *jsonschema.Schema {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s
	}
	s, err := d.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		t.Fatalf("compile schema %s: %v", ptr, err)
	}
	d.schemas[ptr] = s
	return s
}

// pointerToken escapes one JSON pointer token (RFC 6901).
func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// at returns the node at a JSON pointer, or nil.
func (d *apiDoc) at(ptr string) any {
	var cur any = d.root
	if ptr == "" {
		return cur
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[tok]
	}
	return cur
}

// resolve follows local $refs from ptr and returns the pointer of the node
// reached and the node.
func (d *apiDoc) resolve(t testing.TB, ptr string) (string, map[string]any) {
	t.Helper()
	for range 10 {
		m, ok := d.at(ptr).(map[string]any)
		if !ok {
			t.Fatalf("openapi: nothing at %s", ptr)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return ptr, m
		}
		if !strings.HasPrefix(ref, "#/") {
			t.Fatalf("openapi: non-local $ref %q at %s", ref, ptr)
		}
		ptr = strings.TrimPrefix(ref, "#")
	}
	t.Fatalf("openapi: $ref loop at %s", ptr)
	return "", nil
}

// operationPointer is the pointer of an operation, or "" when the document
// has none for method and pattern.
func (d *apiDoc) operationPointer(method, pattern string) string {
	ptr := "/paths/" + pointerToken(pattern) + "/" + strings.ToLower(method)
	if _, ok := d.at(ptr).(map[string]any); !ok {
		return ""
	}
	return ptr
}

// checkResponse checks an answer against the operation of the document for
// method and routePattern (an OpenAPI path such as /api/images/{id}): the
// status must be documented (or a default), the Content-Type one of the
// documented media types, the JSON body valid against the documented schema,
// every required header present and valid, and an envelope's code equal to
// the status.
func checkResponse(t testing.TB, doc *apiDoc, method, routePattern string, resp *http.Response, body []byte) {
	t.Helper()
	op := doc.operationPointer(method, routePattern)
	if op == "" {
		t.Errorf("openapi: no operation %s %s", method, routePattern)
		return
	}
	status := strconv.Itoa(resp.StatusCode)
	ptr := op + "/responses/" + status
	if doc.at(ptr) == nil {
		ptr = op + "/responses/default"
		if doc.at(ptr) == nil {
			t.Errorf("openapi: %s %s answered %d, which the document does not list (body %s)", method, routePattern, resp.StatusCode, trim(body))
			return
		}
	}
	checkResponseAt(t, doc, ptr, method, resp, body)
}

// checkComponentResponse checks an answer against a response of
// components/responses, for answers that no operation documents (unknown
// routes, wrong methods, test-only routes).
func checkComponentResponse(t testing.TB, doc *apiDoc, name string, resp *http.Response, body []byte) {
	t.Helper()
	checkResponseAt(t, doc, "/components/responses/"+pointerToken(name), "", resp, body)
}

func checkResponseAt(t testing.TB, doc *apiDoc, ptr, method string, resp *http.Response, body []byte) {
	t.Helper()
	ptr, r := doc.resolve(t, ptr)

	// Headers.
	if hs, ok := r["headers"].(map[string]any); ok {
		for name := range hs {
			hptr, h := doc.resolve(t, ptr+"/headers/"+pointerToken(name))
			v := resp.Header.Get(name)
			if v == "" {
				if req, _ := h["required"].(bool); req {
					t.Errorf("openapi: %s: required header %s is missing", ptr, name)
				}
				continue
			}
			if _, ok := h["schema"]; !ok {
				continue
			}
			var inst any = v
			if sch, _ := h["schema"].(map[string]any); sch["type"] == "integer" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Errorf("openapi: %s: header %s=%q is not an integer", ptr, name, v)
					continue
				}
				inst = json.Number(strconv.FormatInt(n, 10))
			}
			if err := doc.schema(t, hptr+"/schema").Validate(inst); err != nil {
				t.Errorf("openapi: %s: header %s=%q: %v", ptr, name, v, err)
			}
		}
	}

	// Body.
	content, _ := r["content"].(map[string]any)
	noBody := method == http.MethodHead || resp.StatusCode == http.StatusNotModified || resp.StatusCode == http.StatusNoContent
	if noBody && len(body) > 0 {
		t.Errorf("openapi: %s: answer %d to %s has a body", ptr, resp.StatusCode, method)
	}
	if len(content) == 0 {
		if len(body) > 0 {
			t.Errorf("openapi: %s documents no body, got %s", ptr, trim(body))
		}
		return
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Errorf("openapi: %s: bad Content-Type %q", ptr, ct)
		return
	}
	if _, ok := content[mt]; !ok {
		keys := make([]string, 0, len(content))
		for k := range content {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		t.Errorf("openapi: %s: Content-Type %q is not one of %v", ptr, ct, keys)
		return
	}
	if noBody || mt != "application/json" {
		return
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("openapi: %s: body is not JSON: %v: %s", ptr, err, trim(body))
		return
	}
	sptr := ptr + "/content/" + pointerToken(mt) + "/schema"
	if doc.at(sptr) == nil {
		return
	}
	if err := doc.schema(t, sptr).Validate(inst); err != nil {
		t.Errorf("openapi: %s: body does not match the schema: %v\nbody: %s", ptr, err, trim(body))
	}
	if env, ok := inst.(map[string]any); ok {
		if code, ok := env["code"].(json.Number); ok && code.String() != strconv.Itoa(resp.StatusCode) {
			t.Errorf("openapi: %s: envelope code %s differs from the status %d", ptr, code, resp.StatusCode)
		}
	}
}

func trim(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// registeredRoutes parses server.go and returns every pattern passed to
// s.Handle, so that a route added there without documentation fails.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "server.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Handle" || len(call.Args) == 0 {
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			p, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			routes = append(routes, p)
		}
		return true
	})
	slices.Sort(routes)
	return routes
}

// routeAliases are documented operations that server.go serves through a
// wider pattern, which a literal one would conflict with (see the comment
// there).
var routeAliases = map[string]string{
	"GET /api/images/{id}/variant": "GET /api/images/{id}/{resource}",
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// documentedOperations lists "METHOD /path" for every operation.
func documentedOperations(doc *apiDoc) []string {
	var ops []string
	for path, item := range doc.root["paths"].(map[string]any) {
		for _, m := range httpMethods {
			if _, ok := item.(map[string]any)[m]; ok {
				ops = append(ops, strings.ToUpper(m)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

func TestOpenAPIDocument(t *testing.T) {
	doc := loadDoc(t)

	t.Run("is_valid_OpenAPI_3.1", func(t *testing.T) {
		if v := doc.root["openapi"]; v != "3.1.0" {
			t.Fatalf("openapi = %v, want 3.1.0", v)
		}
		raw, err := os.ReadFile("testdata/oas-3.1-schema.json")
		if err != nil {
			t.Fatal(err)
		}
		meta, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource(oasSchemaURL, meta); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile(oasSchemaURL)
		if err != nil {
			t.Fatal(err)
		}
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(OpenAPI))
		if err := sch.Validate(inst); err != nil {
			t.Fatalf("openapi.json is not a valid OpenAPI 3.1 document: %v", err)
		}
	})

	t.Run("every_ref_resolves", func(t *testing.T) {
		var walk func(ptr string, v any)
		walk = func(ptr string, v any) {
			switch v := v.(type) {
			case map[string]any:
				if ref, ok := v["$ref"].(string); ok {
					if !strings.HasPrefix(ref, "#/") || doc.at(strings.TrimPrefix(ref, "#")) == nil {
						t.Errorf("%s: $ref %q does not resolve", ptr, ref)
					}
				}
				for k, x := range v {
					walk(ptr+"/"+pointerToken(k), x)
				}
			case []any:
				for i, x := range v {
					walk(ptr+"/"+strconv.Itoa(i), x)
				}
			}
		}
		walk("", doc.root)
	})

	t.Run("every_component_schema_compiles", func(t *testing.T) {
		for name := range doc.root["components"].(map[string]any)["schemas"].(map[string]any) {
			doc.schema(t, "/components/schemas/"+pointerToken(name))
		}
	})

	t.Run("operation_ids_are_unique_and_path_parameters_declared", func(t *testing.T) {
		seen := map[string]string{}
		for path, item := range doc.root["paths"].(map[string]any) {
			item := item.(map[string]any)
			for _, m := range httpMethods {
				op, ok := item[m].(map[string]any)
				if !ok {
					continue
				}
				id, _ := op["operationId"].(string)
				if id == "" {
					t.Errorf("%s %s has no operationId", m, path)
				} else if prev, dup := seen[id]; dup {
					t.Errorf("operationId %s used by %s and %s %s", id, prev, m, path)
				}
				seen[id] = m + " " + path
				declared := map[string]bool{}
				for _, params := range []any{item["parameters"], op["parameters"]} {
					ps, _ := params.([]any)
					for i := range ps {
						var p map[string]any
						if ref, ok := ps[i].(map[string]any)["$ref"].(string); ok {
							_, p = doc.resolve(t, strings.TrimPrefix(ref, "#"))
						} else {
							p = ps[i].(map[string]any)
						}
						if p["in"] == "path" {
							declared[p["name"].(string)] = true
						}
					}
				}
				for _, seg := range strings.Split(path, "/") {
					if strings.HasPrefix(seg, "{") && !declared[strings.Trim(seg, "{}")] {
						t.Errorf("%s %s: path parameter %s is not declared", m, path, seg)
					}
				}
				if _, ok := op["responses"].(map[string]any); !ok {
					t.Errorf("%s %s has no responses", m, path)
				}
			}
		}
	})

	t.Run("error_code_enum_lists_every_application_error_code", func(t *testing.T) {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "../error.go", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var codes []string
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "ErrorCode" {
				for _, v := range vs.Values {
					s, _ := strconv.Unquote(v.(*ast.BasicLit).Value)
					codes = append(codes, s)
				}
			}
			return true
		})
		var enum []string
		for _, v := range doc.at("/components/schemas/ErrorCode/enum").([]any) {
			enum = append(enum, v.(string))
		}
		slices.Sort(codes)
		slices.Sort(enum)
		if !slices.Equal(codes, enum) {
			t.Errorf("ErrorCode enum = %v\nerror.go codes = %v", enum, codes)
		}
		if len(statuses) != len(codes) {
			t.Errorf("the status mapping has %d codes, error.go %d", len(statuses), len(codes))
		}
	})

	t.Run("is_served_at_api_openapi_json", func(t *testing.T) {
		h := newHarness(t, options{})
		resp, body := h.call(t, "GET", "/api/openapi.json", "/api/openapi.json", "", nil, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, OpenAPI) {
			t.Errorf("status %d, body equal to the embedded document: %v", resp.StatusCode, bytes.Equal(body, OpenAPI))
		}
	})
}

// TestOpenAPICoversEveryRoute checks both ways that the routes registered in
// server.go and the operations of the document are the same, and that the
// mux sends each documented operation to the route of the same pattern.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadDoc(t)
	routes := registeredRoutes(t)
	if len(routes) < 13 {
		t.Fatalf("parsed only %d routes from server.go: %v", len(routes), routes)
	}
	ops := documentedOperations(doc)

	// A GET route also answers HEAD; the document may list HEAD for it.
	want := map[string]bool{}
	for _, r := range routes {
		want[r] = true
	}
	served := map[string]bool{} // registered patterns that serve an alias
	for _, p := range routeAliases {
		served[p] = true
	}
	for _, r := range routes {
		if !slices.Contains(ops, r) && !served[r] {
			t.Errorf("route %q is registered in server.go but not documented", r)
		}
	}
	for _, op := range ops {
		if want[op] || want[routeAliases[op]] {
			continue
		}
		if get, ok := strings.CutPrefix(op, "HEAD "); ok && want["GET "+get] {
			continue
		}
		t.Errorf("operation %q is documented but no route serves it", op)
	}

	h := newHarness(t, options{webhooks: true})
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		concrete := strings.NewReplacer("{id}", "x", "{jobId}", "x", "{key}", "x",
			"{preset}", "x", "{transform}", "x", "{signature}", "x").Replace(path)
		req, _ := http.NewRequest(method, concrete, nil)
		_, pattern := h.srv.mux.Handler(req)
		wantPattern := op
		if method == "HEAD" {
			wantPattern = "GET " + path
		}
		if p, ok := routeAliases[wantPattern]; ok {
			wantPattern = p
		}
		if pattern != wantPattern {
			t.Errorf("%s %s is served by pattern %q, want %q", method, concrete, pattern, wantPattern)
		}
	}
}
