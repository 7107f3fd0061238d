package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Addr returns the "host:port" to dial for t, from its URL: the host
// lower-cased, port 80 when an http URL has none and 443 when an https
// one has none. It fails, with a message saying what to change, for a URL
// that is not "http://host[:port]" or "https://host[:port]" (Validate
// reports the same).
func (t Target) Addr() (string, error) {
	if t.URL == "" {
		return "", errors.New(`must be set, such as "http://127.0.0.1:9001"`)
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf(`%q is not a URL (%v); write one such as "http://127.0.0.1:9001"`, t.URL, err)
	}
	if err := targetURLProblem(u, t.URL); err != nil {
		return "", err
	}
	port := u.Port()
	switch {
	case port == "" && u.Scheme == "https":
		port = "443"
	case port == "":
		port = "80"
	case !validPort(port, 1):
		return "", fmt.Errorf("port %q must be a number 1-65535", port)
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}

// TLS reports whether the gateway speaks TLS to t: its URL is https://.
// The upstream's tls block configures how.
func (t Target) TLS() bool {
	return len(t.URL) >= len("https://") && strings.EqualFold(t.URL[:len("https://")], "https://")
}

func targetURLProblem(u *url.URL, raw string) error {
	web := u.Scheme == "http" || u.Scheme == "https"
	switch {
	case !web && u.Host == "":
		return fmt.Errorf(`want "http://host:port", got %q`, raw)
	case !web:
		return fmt.Errorf("scheme %q is not supported; use http:// or https://", u.Scheme)
	case u.User != nil:
		return errors.New("must not contain user info (user@ or user:password@); send credentials with a header instead")
	case u.Hostname() == "":
		return fmt.Errorf(`%q has no host; want "%s://host:port"`, raw, u.Scheme)
	case u.Path != "" && u.Path != "/" || u.Opaque != "":
		return fmt.Errorf("must not have a path (%q): routes own paths; use a route's rewrite.strip_prefix or rewrite.path", u.EscapedPath())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf(`must not have a query or fragment; want "%s://host:port"`, u.Scheme)
	}
	return nil
}

// validPort reports whether s is a decimal port number from lowest to
// 65535.
func validPort(s string, lowest int) bool {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= lowest && n <= 65535
}
