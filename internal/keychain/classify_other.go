//go:build !darwin && !windows && !linux && !netbsd && !openbsd && !((dragonfly || freebsd) && cgo)

package keychain

func sessionBusFindable() error { return nil }

// platformKind: go-keyring has no provider here and reports
// keyring.ErrUnsupportedPlatform, which classify already handles.
func platformKind(err error) error { return nil }
