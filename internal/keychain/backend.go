package keychain

import (
	keyring "github.com/zalando/go-keyring"
)

// backend is one platform keychain, one entry per call, the way go-keyring
// works: blocking, not context-aware, string values. Keychain adds
// timeouts, chunking and error classification on top. Tests inject their
// own.
type backend interface {
	Get(service, account string) (string, error)
	Set(service, account, value string) error
	Delete(service, account string) error
}

// goKeyring is the real backend.
type goKeyring struct{}

func (goKeyring) Get(service, account string) (string, error) {
	if err := sessionBusFindable(); err != nil {
		return "", err
	}
	return keyring.Get(service, account)
}

func (goKeyring) Set(service, account, value string) error {
	if err := sessionBusFindable(); err != nil {
		return err
	}
	return keyring.Set(service, account, value)
}

func (goKeyring) Delete(service, account string) error {
	if err := sessionBusFindable(); err != nil {
		return err
	}
	return keyring.Delete(service, account)
}
