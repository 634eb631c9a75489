//go:build windows

package keychain

import (
	"errors"
	"syscall"
)

func sessionBusFindable() error { return nil }

// errNoSuchLogonSession (ERROR_NO_SUCH_LOGON_SESSION): the Credential
// Manager is not available to this logon, e.g. a service account or some
// remote sessions.
const errNoSuchLogonSession = syscall.Errno(1312)

func platformKind(err error) error {
	if errors.Is(err, errNoSuchLogonSession) {
		return ErrUnsupported
	}
	return nil
}
