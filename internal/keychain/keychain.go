package keychain

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultTimeout is the default Options.Timeout.
const DefaultTimeout = 10 * time.Second

func (k *Keychain) service() string {
	if k.opts.Service != "" {
		return k.opts.Service
	}
	return Service
}

func (k *Keychain) timeout() time.Duration {
	if k.opts.Timeout > 0 {
		return k.opts.Timeout
	}
	return DefaultTimeout
}

func (k *Keychain) chunkSize() int {
	switch n := k.opts.ChunkSize; {
	case n == 0:
		return DefaultChunkSize
	case n < MinChunkSize:
		return MinChunkSize
	default:
		return n
	}
}

func (k *Keychain) platform() backend {
	if k.backend != nil {
		return k.backend
	}
	return goKeyring{}
}

// call runs one blocking platform call in a goroutine and gives up when
// ctx ends or the per-call timeout passes. A platform that never answers
// (a Secret Service waiting on a prompt nobody sees) then costs one parked
// goroutine, not a hung command.
func call[T any](ctx context.Context, timeout time.Duration, fn func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1) // buffered: a late answer must not block the goroutine forever
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

func (k *Keychain) get(ctx context.Context, account string) (string, error) {
	b, svc := k.platform(), k.service()
	return call(ctx, k.timeout(), func() (string, error) { return b.Get(svc, account) })
}

func (k *Keychain) set(ctx context.Context, account, value string) error {
	b, svc := k.platform(), k.service()
	_, err := call(ctx, k.timeout(), func() (struct{}, error) { return struct{}{}, b.Set(svc, account, value) })
	return err
}

// del deletes one entry; a missing one is not an error.
func (k *Keychain) del(ctx context.Context, account string) (existed bool, err error) {
	b, svc := k.platform(), k.service()
	_, err = call(ctx, k.timeout(), func() (struct{}, error) { return struct{}{}, b.Delete(svc, account) })
	if classify(err) == ErrNotFound {
		return false, nil
	}
	return err == nil, err
}

// fail builds the returned error from a platform error.
func fail(op, account string, err error, secrets ...string) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Op: op, Account: account, Kind: classify(err), Err: redact(err, secrets...)}
}

// Get returns the value stored under account (rejoining chunks), ErrNotFound when none.
func (k *Keychain) Get(ctx context.Context, account string) ([]byte, error) {
	return k.getOp(ctx, "get", account)
}

func (k *Keychain) getOp(ctx context.Context, op, account string) ([]byte, error) {
	if err := checkAccount(op, account); err != nil {
		return nil, err
	}
	unlock, err := lockAccount(ctx, k.service(), account)
	if err != nil {
		return nil, fail(op, account, err)
	}
	defer unlock()

	main, err := k.get(ctx, account)
	if err != nil {
		return nil, fail(op, account, err)
	}
	h, first, err := parseMain(main)
	if err != nil {
		return nil, &Error{Op: op, Account: account, Kind: ErrCorrupt, Err: err}
	}
	pieces := []string{first}
	for i := 1; i < h.count; i++ {
		p, err := k.get(ctx, chunkAccount(account, i))
		if err != nil {
			if classify(err) == ErrNotFound {
				return nil, &Error{Op: op, Account: account, Kind: ErrCorrupt,
					Err: fmt.Errorf("chunk %d of %d (%q) is missing", i, h.count, chunkAccount(account, i))}
			}
			return nil, fail(op, account, err)
		}
		pieces = append(pieces, p)
	}
	value, err := decodeValue(h, pieces)
	if err != nil {
		return nil, &Error{Op: op, Account: account, Kind: ErrCorrupt, Err: err}
	}
	return value, nil
}

// Set stores value under account, replacing any previous value and its chunks.
//
// Chunks are written first and the main entry (whose header names the chunk
// count and checksum) last, then chunks left over from a longer previous
// value are removed. A write interrupted halfway leaves an entry that Get
// reports as ErrCorrupt, never a silently wrong value.
func (k *Keychain) Set(ctx context.Context, account string, value []byte) error {
	return k.setOp(ctx, "set", account, value)
}

func (k *Keychain) setOp(ctx context.Context, op, account string, value []byte) error {
	if err := checkAccount(op, account); err != nil {
		return err
	}
	entries, err := encodeEntries(value, k.chunkSize())
	if err != nil {
		return &Error{Op: op, Account: account, Err: err}
	}
	secrets := append([]string{string(value)}, entries...)

	unlock, err := lockAccount(ctx, k.service(), account)
	if err != nil {
		return fail(op, account, err)
	}
	defer unlock()

	oldCount := 0
	if old, err := k.get(ctx, account); err == nil {
		if h, _, err := parseMain(old); err == nil {
			oldCount = h.count
		}
	} else if classify(err) != ErrNotFound {
		return fail(op, account, err)
	}

	for i := 1; i < len(entries); i++ {
		if err := k.set(ctx, chunkAccount(account, i), entries[i]); err != nil {
			return fail(op, account, err, secrets...)
		}
	}
	if err := k.set(ctx, account, entries[0]); err != nil {
		return fail(op, account, err, secrets...)
	}
	if err := k.deleteChunks(ctx, account, len(entries), oldCount); err != nil {
		return fail(op, account, err)
	}
	return nil
}

// deleteChunks removes chunks from index from upward. The previous header
// said there were count entries; those are removed from the top down (so
// an interruption never leaves a gap), then any stray chunks past them
// (from an earlier interrupted write) until the first missing one.
func (k *Keychain) deleteChunks(ctx context.Context, account string, from, count int) error {
	for i := count - 1; i >= from; i-- {
		if _, err := k.del(ctx, chunkAccount(account, i)); err != nil {
			return err
		}
	}
	for i := max(from, count); i < MaxChunks; i++ {
		existed, err := k.del(ctx, chunkAccount(account, i))
		if err != nil {
			return err
		}
		if !existed {
			return nil
		}
	}
	return nil
}

// Delete removes account and all its chunks. Deleting a missing entry is not an error.
func (k *Keychain) Delete(ctx context.Context, account string) error {
	return k.deleteOp(ctx, "delete", account)
}

func (k *Keychain) deleteOp(ctx context.Context, op, account string) error {
	if err := checkAccount(op, account); err != nil {
		return err
	}
	unlock, err := lockAccount(ctx, k.service(), account)
	if err != nil {
		return fail(op, account, err)
	}
	defer unlock()

	count := 1
	if main, err := k.get(ctx, account); err == nil {
		if h, _, err := parseMain(main); err == nil {
			count = h.count
		}
	} else if classify(err) != ErrNotFound {
		return fail(op, account, err)
	}
	// Chunks before the main entry: if this is interrupted, the main entry
	// still says what is left to clean up.
	if err := k.deleteChunks(ctx, account, 1, count); err != nil {
		return fail(op, account, err)
	}
	if _, err := k.del(ctx, account); err != nil {
		return fail(op, account, err)
	}
	return nil
}

// ProbeAccountPrefix starts the account name of Probe's throwaway entries.
const ProbeAccountPrefix = "onerecord-probe-"

// Probe checks that the keychain is usable now (writes, reads and deletes a
// probe entry) and returns the same typed errors as the other calls.
func (k *Keychain) Probe(ctx context.Context) error {
	var r [8]byte
	_, _ = rand.Read(r[:])
	account := ProbeAccountPrefix + hex.EncodeToString(r[:])
	want := []byte("probe " + hex.EncodeToString(r[:]))
	if err := k.setOp(ctx, "probe", account, want); err != nil {
		return err
	}
	got, getErr := k.getOp(ctx, "probe", account)
	delErr := k.deleteOp(ctx, "probe", account)
	switch {
	case getErr != nil:
		return getErr
	case string(got) != string(want):
		return &Error{Op: "probe", Account: account, Kind: ErrCorrupt, Err: errors.New("read back a different value than was written")}
	}
	return delErr
}

// checkAccount rejects names the chunk layout or the platforms cannot
// hold: empty, too long, containing the chunk separator or control
// characters.
func checkAccount(op, account string) error {
	var why string
	switch {
	case account == "":
		why = "empty account name"
	case len(account) > MaxAccountLen:
		why = fmt.Sprintf("account name longer than %d bytes", MaxAccountLen)
	case strings.Contains(account, chunkSep):
		why = fmt.Sprintf("account name contains %q", chunkSep)
	case !utf8.ValidString(account) || strings.IndexFunc(account, unicode.IsControl) >= 0:
		why = "account name is not printable text"
	default:
		return nil
	}
	return &Error{Op: op, Account: account, Err: errors.New(why)}
}

// accountLocks serialises operations on one entry within the process, so
// two goroutines never interleave chunks. Across processes, callers that
// can race (token refresh) hold a file lock (internal/grant).
var accountLocks sync.Map // service + "\x00" + account -> chan struct{}

func lockAccount(ctx context.Context, service, account string) (unlock func(), err error) {
	v, _ := accountLocks.LoadOrStore(service+"\x00"+account, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
