package config_test

import (
	"fmt"
	"os"

	"fastgate/core/config"
)

func ExampleParse() {
	data := []byte(`
listen: ":8080"
upstreams:
  users:
    targets: [{url: "${USERS_URL:-http://127.0.0.1:9001}"}]
    timeouts: {request: 5s}
routes:
  - name: users
    match: {path: "/api/users/{id}", methods: [GET]}
    upstream: users
    rewrite: {path: "/users/{id}"}
`)
	c, err := config.Parse(data, "yaml", os.LookupEnv)
	if err != nil {
		fmt.Println(err)
		return
	}
	d := config.BuiltinDefaults()
	c.SetDefaults(&d)
	if err := c.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	u := c.Upstreams["users"]
	fmt.Println(u.Targets[0].URL, u.Timeouts.Request, u.Pool.MaxConns, c.Server.MaxRequestBody)
	// Output: http://127.0.0.1:9001 5s 512 4MiB
}

func ExampleConfig_Validate() {
	c, err := config.Parse([]byte(`
upstreams:
  users: {targets: [{url: "http://127.0.0.1:9001/api"}]}
routes:
  - {match: {path: "/users/{id}"}, upstream: userz}
  - {match: {path: "/users/{uid}"}, upstream: users, timeout: 2s}
`), "yaml", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c.SetDefaults(nil)
	fmt.Println(c.Validate())
	// Output:
	// upstreams.users.targets[0].url: must not have a path ("/api"): routes own paths; use a route's rewrite.strip_prefix or rewrite.path
	// routes[0].upstream: unknown upstream "userz" (known: users); did you mean "users"?
	// routes[1]: never matches: routes[0] ("route0") has the same hosts, path, methods and conditions and comes first
}
