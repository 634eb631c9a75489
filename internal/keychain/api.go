// Package keychain keeps onerecord's secrets (OAuth token sets, client
// secrets) in the operating system's keychain through
// github.com/zalando/go-keyring: macOS Keychain, Windows Credential Manager,
// freedesktop Secret Service. Every call has a timeout, values larger than the
// platform limit are split into chunks and rejoined, and failures come back as
// distinct, actionable errors. There is no fallback to a plain file.
//
// The exported API in this file is a contract other packages code against;
// the implementation may add to it but must keep these signatures.
package keychain

import (
	"context"
	"errors"
	"time"
)

// Service is the keychain service name of every onerecord entry.
const Service = "onerecord"

// Sentinel errors. Errors returned by Keychain wrap exactly one of them when
// the cause is known, and carry a Hint() string method saying what to do.
var (
	ErrNotFound    = errors.New("keychain: no such entry")
	ErrNoDBus      = errors.New("keychain: no D-Bus session bus")
	ErrNoProvider  = errors.New("keychain: no Secret Service provider is running")
	ErrLocked      = errors.New("keychain: the keyring is locked")
	ErrTimeout     = errors.New("keychain: the keychain did not answer in time")
	ErrUnsupported = errors.New("keychain: no keychain on this platform")
)

// Secrets is what callers need from a keychain. Both *Keychain and *Memory
// implement it.
type Secrets interface {
	Get(ctx context.Context, account string) ([]byte, error)
	Set(ctx context.Context, account string, value []byte) error
	Delete(ctx context.Context, account string) error
}

// Options configure a Keychain.
type Options struct {
	Service   string        // default Service
	Timeout   time.Duration // per call; default 10s
	ChunkSize int           // bytes per entry; default a safe value for every platform (about 2 KB)
}

// Keychain is the OS keychain.
type Keychain struct {
	opts Options
}

// New returns the OS keychain with opts (zero values take defaults).
func New(opts Options) *Keychain { return &Keychain{opts: opts} }

var errUnimplemented = errors.New("keychain: not implemented yet")

// Get returns the value stored under account (rejoining chunks), ErrNotFound when none.
func (k *Keychain) Get(ctx context.Context, account string) ([]byte, error) {
	return nil, errUnimplemented
}

// Set stores value under account, replacing any previous value and its chunks.
func (k *Keychain) Set(ctx context.Context, account string, value []byte) error {
	return errUnimplemented
}

// Delete removes account and all its chunks. Deleting a missing entry is not an error.
func (k *Keychain) Delete(ctx context.Context, account string) error { return errUnimplemented }

// Probe checks that the keychain is usable now (writes, reads and deletes a
// probe entry) and returns the same typed errors as the other calls.
func (k *Keychain) Probe(ctx context.Context) error { return errUnimplemented }

// Memory is an in-memory Secrets for unit tests and the demo's fallback.
type Memory struct{}

// NewMemory returns an empty in-memory keychain.
func NewMemory() *Memory { return &Memory{} }

func (m *Memory) Get(ctx context.Context, account string) ([]byte, error) {
	return nil, errUnimplemented
}
func (m *Memory) Set(ctx context.Context, account string, value []byte) error {
	return errUnimplemented
}
func (m *Memory) Delete(ctx context.Context, account string) error { return errUnimplemented }
