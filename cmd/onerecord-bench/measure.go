package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// usagePrefix starts the line --measure appends to stderr.
const usagePrefix = "onerecord-bench-usage:"

type usage struct {
	maxRSS int64
	cpu    time.Duration
}

// measure runs argv as a child with this process's stdio and environment,
// then appends its peak RSS and CPU time to stderr and exits with its exit
// code. This process is small, so the child's peak RSS is its own.
func measure(argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "onerecord-bench: --measure needs a command")
		return 2
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		fmt.Fprintf(os.Stderr, "onerecord-bench: %v\n", err)
		return 1
	}
	ps := cmd.ProcessState
	fmt.Fprintf(os.Stderr, "\n%s maxrss=%d cpu=%d\n", usagePrefix, maxRSS(ps), int64(ps.UserTime()+ps.SystemTime()))
	return code
}

// parseUsage finds the --measure line in stderr and returns the figures and
// stderr without it.
func parseUsage(stderr string) (usage, string, bool) {
	i := strings.LastIndex(stderr, usagePrefix)
	if i < 0 {
		return usage{}, stderr, false
	}
	var u usage
	for _, f := range strings.Fields(stderr[i+len(usagePrefix):]) {
		k, v, _ := strings.Cut(f, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return usage{}, stderr, false
		}
		switch k {
		case "maxrss":
			u.maxRSS = n
		case "cpu":
			u.cpu = time.Duration(n)
		}
	}
	return u, strings.TrimRight(stderr[:i], "\n"), true
}
