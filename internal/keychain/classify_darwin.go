//go:build darwin

package keychain

import (
	"errors"
	"os/exec"
)

func sessionBusFindable() error { return nil }

// platformKind classifies what go-keyring's macOS provider (which runs
// /usr/bin/security) returns.
func platformKind(err error) error {
	if errors.Is(err, exec.ErrNotFound) {
		return ErrUnsupported
	}
	var ee *exec.ExitError
	// security exits 36 when the keychain is locked and it may not ask
	// (an SSH session, a launch agent).
	if errors.As(err, &ee) && ee.ExitCode() == 36 {
		return ErrLocked
	}
	return nil
}
