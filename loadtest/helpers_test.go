package loadtest

import "os"

// ciMode reports CI=true: tests needing tools fail instead of skipping.
func ciMode() bool { return os.Getenv("CI") == "true" }

func readFile(p string) ([]byte, error)  { return os.ReadFile(p) }
func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o644) }
