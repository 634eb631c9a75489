package keychain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// secretsContract is what every Secrets must do.
func secretsContract(t *testing.T, s Secrets) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing entry = %v, want ErrNotFound", err)
	}
	v := []byte("value")
	if err := s.Set(ctx, "a", v); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X' // the caller's slice is not kept
	got, err := s.Get(ctx, "a")
	if err != nil || string(got) != "value" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	got[0] = 'Y' // nor is the returned one shared
	if again, _ := s.Get(ctx, "a"); string(again) != "value" {
		t.Fatalf("stored value changed through a returned slice: %q", again)
	}
	if err := s.Set(ctx, "a", []byte("second")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "a"); string(got) != "second" {
		t.Fatalf("overwrite: got %q", got)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v", err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete of a missing entry = %v", err)
	}
	if got, err := s.Get(ctx, "missing"); err == nil || got != nil {
		t.Fatal("missing entry returned a value")
	} else if h := err.(interface{ Hint() string }).Hint(); h == "" {
		t.Error("ErrNotFound has no hint")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Set(canceled, "a", []byte("v")); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Set with a canceled ctx = %v", err)
	}
	if err := s.Set(ctx, "bin", []byte{0, 0xff, 1}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "bin"); !bytes.Equal(got, []byte{0, 0xff, 1}) {
		t.Fatalf("binary value: %x", got)
	}
	_ = s.Delete(ctx, "bin")
}

func TestSecretsContract(t *testing.T) {
	t.Run("memory", func(t *testing.T) { secretsContract(t, NewMemory()) })
	t.Run("zero memory", func(t *testing.T) { secretsContract(t, &Memory{}) })
	t.Run("keychain on a fake platform", func(t *testing.T) {
		k, _ := newTestKeychain(Options{})
		secretsContract(t, k)
	})
}

func TestMemoryFail(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	if err := m.Set(ctx, "a", []byte("v")); err != nil {
		t.Fatal(err)
	}
	m.Fail(ErrLocked)
	_, err := m.Get(ctx, "a")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Get = %v, want ErrLocked", err)
	}
	if h := err.(*Error).Hint(); h == "" {
		t.Error("no hint")
	}
	if err.Error() != `keychain: get "a": the keyring is locked` {
		t.Errorf("message = %q", err)
	}
	other := errors.New("weird")
	m.Fail(other)
	if err := m.Delete(ctx, "a"); !errors.Is(err, other) {
		t.Fatalf("Delete = %v", err)
	}
	m.Fail(nil)
	if got, err := m.Get(ctx, "a"); err != nil || string(got) != "v" {
		t.Fatalf("after Fail(nil): %q, %v", got, err)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			account := fmt.Sprintf("p%d", i%4)
			for j := range 100 {
				v := []byte(fmt.Sprintf("%d-%d", i, j))
				if err := m.Set(ctx, account, v); err != nil {
					t.Error(err)
				}
				if _, err := m.Get(ctx, account); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := m.Accounts(); !slices.Equal(got, []string{"p0", "p1", "p2", "p3"}) {
		t.Fatalf("Accounts = %q", got)
	}
}
