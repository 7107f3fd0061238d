package config

import (
	"reflect"
	"testing"
)

func TestParsePathTemplate(t *testing.T) {
	f := func(s string, want ...Segment) {
		t.Helper()
		got, err := ParsePathTemplate(s)
		if err != nil {
			t.Fatalf("ParsePathTemplate(%q): %s", s, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParsePathTemplate(%q): got %+v; want %+v", s, got, want)
		}
	}
	f("/", Segment{Static, ""})
	f("/api", Segment{Static, "api"})
	f("/api/", Segment{Static, "api"}, Segment{Static, ""})
	f("/api/users/{id}", Segment{Static, "api"}, Segment{Static, "users"}, Segment{Param, "id"})
	f("/{a}/{b}/x", Segment{Param, "a"}, Segment{Param, "b"}, Segment{Static, "x"})
	f("/static/{file:*}", Segment{Static, "static"}, Segment{CatchAll, "file"})
	f("/{path:*}", Segment{CatchAll, "path"})
	f("/v1.0/a-b_c~:*", Segment{Static, "v1.0"}, Segment{Static, "a-b_c~:*"})
}

func TestParsePathTemplateErrors(t *testing.T) {
	f := func(s, want string) {
		t.Helper()
		got, err := ParsePathTemplate(s)
		if err == nil {
			t.Fatalf("ParsePathTemplate(%q): got %+v; want error %q", s, got, want)
		}
		if err.Error() != want {
			t.Fatalf("ParsePathTemplate(%q):\ngot  %s\nwant %s", s, err, want)
		}
	}
	f("", `must start with "/", got ""`)
	f("api/{id}", `must start with "/", got "api/{id}"`)
	f("/a?b=1", `"/a?b=1" must not contain '?' or '#': the path is matched without the query (match query arguments with match.query)`)
	f("/a#b", `"/a#b" must not contain '?' or '#': the path is matched without the query (match query arguments with match.query)`)
	f("//a", `segment 1 of "//a" is empty; write a single "/" between segments`)
	f("/a//b", `segment 2 of "/a//b" is empty; write a single "/" between segments`)
	f("/a/{id", `segment 2 "{id": a parameter must be a whole segment such as {id} or {rest:*}`)
	f("/a/id}", `segment 2 "id}": a parameter must be a whole segment such as {id} or {rest:*}`)
	f("/a/x{id}", `segment 2 "x{id}": a parameter must be a whole segment such as {id} or {rest:*}`)
	f("/a/{id}.json", `segment 2 "{id}.json": a parameter must be a whole segment such as {id} or {rest:*}`)
	f("/{{id}}", `segment 1 "{{id}}": a parameter must be a whole segment such as {id} or {rest:*}`)
	f("/{}", `segment 1 "{}": parameter name "" must be letters, digits or '_' (regular expressions are not supported)`)
	f("/{:*}", `segment 1 "{:*}": parameter name "" must be letters, digits or '_' (regular expressions are not supported)`)
	f("/{id:[0-9]+}", `segment 1 "{id:[0-9]+}": parameter name "id:[0-9]+" must be letters, digits or '_' (regular expressions are not supported)`)
	f("/{rest:*}/x", `segment 1 "{rest:*}": a catch-all {name:*} must be the last segment`)
	f("/{id}/{id}", `parameter {id} appears twice`)
	f("/{id}/{id:*}", `parameter {id} appears twice`)
}

func TestParseRewriteTemplate(t *testing.T) {
	f := func(s string, params []string, wantPath, wantQuery []RewritePart) {
		t.Helper()
		path, query, err := ParseRewriteTemplate(s, params)
		if err != nil {
			t.Fatalf("ParseRewriteTemplate(%q): %s", s, err)
		}
		if !reflect.DeepEqual(path, wantPath) || !reflect.DeepEqual(query, wantQuery) {
			t.Fatalf("ParseRewriteTemplate(%q): got %+v ? %+v; want %+v ? %+v", s, path, query, wantPath, wantQuery)
		}
	}
	lit := func(s string) RewritePart { return RewritePart{Value: s} }
	param := func(s string) RewritePart { return RewritePart{Param: true, Value: s} }
	f("/", nil, []RewritePart{lit("/")}, nil)
	f("/users/{id}", []string{"id"}, []RewritePart{lit("/users/"), param("id")}, nil)
	f("/{a}{b}", []string{"a", "b"}, []RewritePart{lit("/"), param("a"), param("b")}, nil)
	f("/{rest}.json", []string{"rest"}, []RewritePart{lit("/"), param("rest"), lit(".json")}, nil)
	f("/orders?user={id}&x=1", []string{"id"}, []RewritePart{lit("/orders")}, []RewritePart{lit("user="), param("id"), lit("&x=1")})
	f("/a?", nil, []RewritePart{lit("/a")}, nil)
}

func TestParseRewriteTemplateErrors(t *testing.T) {
	f := func(s string, params []string, want string) {
		t.Helper()
		_, _, err := ParseRewriteTemplate(s, params)
		if err == nil || err.Error() != want {
			t.Fatalf("ParseRewriteTemplate(%q):\ngot  %v\nwant %s", s, err, want)
		}
	}
	f("users", nil, `must start with "/", got "users"`)
	f("/{id}", nil, `unknown parameter {id} (the route's path has: none)`)
	f("/{ID}", []string{"id", "x"}, `unknown parameter {ID} (the route's path has: id, x)`)
	f("/{id", []string{"id"}, `unclosed '{' in "/{id"`)
	f("/id}", []string{"id"}, `unbalanced '}' in "/id}"`)
	f("/a}{id}", []string{"id"}, `unbalanced '}' in "/a}{id}"`)
	f("/a?x={y}", []string{"id"}, `unknown parameter {y} (the route's path has: id)`)
}

func TestParamNames(t *testing.T) {
	f := func(s string, want []string) {
		t.Helper()
		segs, err := ParsePathTemplate(s)
		if err != nil {
			t.Fatalf("ParsePathTemplate(%q): %s", s, err)
		}
		if got := ParamNames(segs); !reflect.DeepEqual(got, want) {
			t.Fatalf("ParamNames(%q): got %q; want %q", s, got, want)
		}
	}
	f("/a/b", nil)
	f("/{a}/b/{c:*}", []string{"a", "c"})
}

func FuzzParsePathTemplate(f *testing.F) {
	for _, s := range []string{"/", "/api/users/{id}", "/static/{file:*}", "/{a}/{b}", "/a//b", "/{id"} {
		f.Add(s, "/x/{id}?a={a}")
	}
	f.Fuzz(func(t *testing.T, path, rewrite string) {
		segs, err := ParsePathTemplate(path)
		if err != nil {
			return
		}
		for i, s := range segs {
			if s.Kind == CatchAll && i != len(segs)-1 {
				t.Fatalf("ParsePathTemplate(%q): catch-all segment %d is not last", path, i)
			}
		}
		ParseRewriteTemplate(rewrite, ParamNames(segs)) //nolint:errcheck // must only not panic
	})
}
