package keychain

import (
	"context"
	"slices"
	"sync"
)

// Memory is an in-memory Secrets for unit tests and the demo's fallback.
// It has the Keychain's semantics (account name rules, ErrNotFound, Delete
// of a missing entry is not an error, values copied in and out, a done ctx
// fails the call with ErrTimeout) without chunking, which has no limit to
// work around here. It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	values map[string][]byte
	fail   error
}

// NewMemory returns an empty in-memory keychain.
func NewMemory() *Memory { return &Memory{values: map[string][]byte{}} }

// Fail makes every following call fail with err (nil restores normal
// behaviour), to test how callers handle a broken keychain. A package
// sentinel (ErrLocked, ErrNoDBus, ...) becomes the error's Kind, so the
// returned error has the same shape and Hint as a real one.
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// Accounts lists the stored account names, sorted.
func (m *Memory) Accounts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.values))
	for a := range m.values {
		names = append(names, a)
	}
	slices.Sort(names)
	return names
}

// begin checks the common preconditions and takes the lock; the caller
// unlocks when err is nil.
func (m *Memory) begin(ctx context.Context, op, account string) error {
	if err := checkAccount(op, account); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &Error{Op: op, Account: account, Kind: ErrTimeout, Err: err}
	}
	m.mu.Lock()
	if m.fail != nil {
		err := m.fail
		m.mu.Unlock()
		e := &Error{Op: op, Account: account, Kind: classify(err)}
		if e.Kind != err {
			e.Err = err
		}
		return e
	}
	if m.values == nil {
		m.values = map[string][]byte{}
	}
	return nil
}

// Get returns a copy of the value stored under account, ErrNotFound when none.
func (m *Memory) Get(ctx context.Context, account string) ([]byte, error) {
	if err := m.begin(ctx, "get", account); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	v, ok := m.values[account]
	if !ok {
		return nil, &Error{Op: "get", Account: account, Kind: ErrNotFound}
	}
	return slices.Clone(v), nil
}

// Set stores a copy of value under account.
func (m *Memory) Set(ctx context.Context, account string, value []byte) error {
	if err := m.begin(ctx, "set", account); err != nil {
		return err
	}
	defer m.mu.Unlock()
	v := make([]byte, len(value))
	copy(v, value)
	m.values[account] = v
	return nil
}

// Delete removes account; deleting a missing entry is not an error.
func (m *Memory) Delete(ctx context.Context, account string) error {
	if err := m.begin(ctx, "delete", account); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.values, account)
	return nil
}
