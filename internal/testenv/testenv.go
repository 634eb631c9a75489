// Package testenv decides what a test does when a real part of the machine
// (Secret Service keychain, D-Bus, headless Chromium) is missing: skip on a
// developer's machine, fail in CI, where ONERECORD_REQUIRE_INTEGRATION=1 says
// every real part must be there and tested.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// EnvRequire is the variable CI sets.
const EnvRequire = "ONERECORD_REQUIRE_INTEGRATION"

// Required reports whether missing real parts must fail tests.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Missing skips the test (or fails it when Required) because what is not
// available: e.g. Missing(t, "Secret Service keychain", err).
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is required (%s=1) but not available: %v", what, EnvRequire, err)
	}
	t.Skipf("%s not available: %v (set %s=1 to make this a failure)", what, err, EnvRequire)
}

// Chromium returns the path of a Chromium binary ($ONERECORD_CHROMIUM,
// chromium, chromium-browser, google-chrome), or calls Missing.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ONERECORD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "headless Chromium", exec.ErrNotFound)
	return ""
}
