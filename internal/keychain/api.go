// Package keychain keeps onerecord's secrets (OAuth token sets, client
// secrets) in the operating system's keychain through
// github.com/zalando/go-keyring: macOS Keychain, Windows Credential Manager,
// freedesktop Secret Service. Every call has a timeout, values larger than the
// platform limit are split into chunks and rejoined, and failures come back as
// distinct, actionable errors. There is no fallback to a plain file.
//
// Start with New and the Secrets interface; Memory is an in-memory Secrets
// with the same semantics for tests and the demo. docs/keychain.md describes
// where entries live on each platform and how to fix a missing keychain.
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
	// ErrCorrupt means an entry exists but cannot be read back whole: a chunk
	// is missing, the checksum does not match, or it was not written by
	// onerecord (an interrupted write, or an edit outside onerecord).
	ErrCorrupt = errors.New("keychain: the entry is damaged")
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
	Service string // default Service
	// Timeout bounds each call to the platform keychain (a value split into
	// n chunks makes about n calls); default 10s. The caller's ctx bounds
	// the whole operation.
	Timeout time.Duration
	// ChunkSize is the most bytes handed to the platform for one entry,
	// header included; default DefaultChunkSize, minimum MinChunkSize.
	ChunkSize int
}

// Keychain is the OS keychain. The zero value works with default options.
type Keychain struct {
	opts    Options
	backend backend // nil: the platform keychain through go-keyring
}

// New returns the OS keychain with opts (zero values take defaults).
func New(opts Options) *Keychain { return &Keychain{opts: opts} }

var (
	_ Secrets = (*Keychain)(nil)
	_ Secrets = (*Memory)(nil)
)
