package config

import (
	"reflect"
	"testing"
)

func TestCacheErrors(t *testing.T) {
	f := checkErrors
	f(t, `cache: {max_size: 128MiB}
routes: [{upstream: users, cache: {ttl: 1m, stale_while_revalidate: 30s, stale_if_error: 1h, methods: [GET], statuses: [200, 404],
  query: sort, vary: [Accept-Language], per_consumer: true, max_object_size: 2MiB, lock_timeout: 1s, key_header: true}}]`)
	f(t, `routes: [{static: {status: 200, body: "ok"}, cache: {ttl: 1m}}]`)
	f(t, `cache: {max_size: -1}
routes: [{upstream: users, cache: {ttl: -1s, stale_while_revalidate: -1s, stale_if_error: -2s, lock_timeout: -1s, max_object_size: -1}}]`,
		`cache.max_size: size "-1" is negative; it must be >= 0`,
		`routes[0].cache.ttl: duration "-1s" is negative; it must be >= 0`,
		`routes[0].cache.stale_while_revalidate: duration "-1s" is negative; it must be >= 0`,
		`routes[0].cache.stale_if_error: duration "-2s" is negative; it must be >= 0`,
		`routes[0].cache.lock_timeout: duration "-1s" is negative; it must be >= 0`,
		`routes[0].cache.max_object_size: size "-1" is negative; it must be >= 0`)
	f(t, `routes: [{upstream: users, cache: {query: sorted, methods: [get, POST, GET, GET], statuses: [200, 99, 206, 600, 200], vary: ["X A", Accept, accept, "*"]}}]`,
		`routes[0].cache.query: "sorted" is not a query mode: write "keep" (as sent), "sort" (args sorted) or "ignore" (no query in the key)`,
		`routes[0].cache.methods[0]: "get": methods are case-sensitive; write "GET"`,
		`routes[0].cache.methods[1]: "POST" is not cacheable here: only GET and HEAD (answered from the GET entry) are`,
		`routes[0].cache.methods[3]: "GET" is listed twice`,
		`routes[0].cache.statuses[1]: 99 is not a final status code: write one of 200-599, such as 200 or 404`,
		`routes[0].cache.statuses[2]: 206 (partial content) is not stored: ranges are passed through; remove it`,
		`routes[0].cache.statuses[3]: 600 is not a final status code: write one of 200-599, such as 200 or 404`,
		`routes[0].cache.statuses[4]: 200 is listed twice`,
		"routes[0].cache.vary[0]: \"X A\" is not a header name: use letters, digits and !#$%&'*+-.^_`|~",
		`routes[0].cache.vary[2]: "accept" is listed twice`,
		"routes[0].cache.vary[3]: \"*\" is not a header name: use letters, digits and !#$%&'*+-.^_`|~")
	f(t, `routes: [{upstream: users, cache: {methods: []}}]`,
		`routes[0].cache.methods: must list GET, HEAD or both; to cache nothing remove the route's cache`)
	f(t, `routes: [{upstream: users, cache: {max_object_size: 20MiB}}]`,
		`routes[0].cache.max_object_size: 20MiB is over a quarter of cache.max_size (64MiB): a few such objects would evict everything; raise cache.max_size or lower max_object_size`)
	f(t, `routes: [{upstream: users, cache: {ttl: 1m, bogus: 1}}]`,
		`routes[0].cache.bogus: unknown field "bogus" (known: ttl, stale_while_revalidate, stale_if_error, methods, statuses, query, vary, per_consumer, max_object_size, lock_timeout, key_header)`)
}

func TestCacheDefaults(t *testing.T) {
	f := func(data string, wantStore Size, want *Cache) {
		t.Helper()
		c, err := ParseChecked([]byte(validBase+data), "yaml", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.Cache.MaxSize != wantStore {
			t.Fatalf("%s: cache.max_size got %s; want %s", data, c.Cache.MaxSize, wantStore)
		}
		if got := c.Routes[0].Cache; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: cache got %+v; want %+v", data, got, want)
		}
	}
	f(`routes: [{upstream: users}]`, DefaultCacheMaxSize, nil)
	f(`routes: [{upstream: users, cache: {}}]`, DefaultCacheMaxSize, &Cache{Methods: []string{"GET", "HEAD"},
		Statuses: []int{200, 203, 204, 300, 301, 404, 410}, Query: "keep", MaxObjectSize: 1 << 20, LockTimeout: Duration(5e9)})
	f("cache: {max_size: 1GiB}\nroutes: [{upstream: users, cache: {ttl: 10s, methods: [GET], statuses: [200], query: ignore, max_object_size: 4KiB, lock_timeout: 100ms}}]",
		1<<30, &Cache{TTL: Duration(10e9), Methods: []string{"GET"}, Statuses: []int{200}, Query: "ignore", MaxObjectSize: 4 << 10, LockTimeout: Duration(1e8)})
}
