package config

// Aggregate is the aggregate terminal: one request fans out to several
// backends whose JSON responses are merged into one.
type Aggregate struct {
	// Backends are the calls to make. At least one.
	Backends []AggregateBackend `json:"backends" yaml:"backends"`
}

// AggregateBackend is one call of an aggregate route.
type AggregateBackend struct {
	// Upstream names the upstream the call goes to. Required.
	Upstream string `json:"upstream" yaml:"upstream"`
	// Path is the request path template, with the route's parameters.
	Path string `json:"path" yaml:"path"`
	// Group, when set, puts the backend's response under this key.
	Group string `json:"group" yaml:"group"`
}

func (a *Aggregate) setDefaults() {}

// validateAggregate checks a route's aggregate terminal.
func validateAggregate(errs *Errors, path string, a *Aggregate, upstreams, params []string, paramsOK bool) {
}
