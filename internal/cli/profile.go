package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// profileEnv names a file to write a CPU profile of the whole command to
// (`go tool pprof` format). It is for measuring the real process, as
// docs/performance.md does; a profile holds stack samples only, no data.
const profileEnv = "ONERECORD_CPUPROFILE"

// startProfile starts the CPU profile that profileEnv asks for and returns
// the function that ends it. Without the variable it does nothing.
func startProfile() (stop func()) {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = pprof.StartCPUProfile(f)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "onerecord: %s: %v\n", profileEnv, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
