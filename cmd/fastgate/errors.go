package main

import (
	"flag"
	"fmt"
)

var errHelp = flag.ErrHelp

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
