package sync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// ErrSyncRunning is wrapped by *BusyError.
var ErrSyncRunning = errors.New("sync: another sync is running")

// BusyError says that another process holds the sync lock of this home.
type BusyError struct {
	PID  int // 0 when unknown
	Path string
}

func (e *BusyError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("another sync is running (pid %d)", e.PID)
	}
	return "another sync is running"
}

func (e *BusyError) Unwrap() error { return ErrSyncRunning }

// Hint says what to do.
func (e *BusyError) Hint() string {
	return "wait for it to finish, or run `onerecord sync --wait` to start when it is done"
}

// Lock is a held sync lock.
type Lock struct {
	fl      *flock.Flock
	pidPath string
}

// AcquireLock takes the process-level sync lock at path (an OS file lock, so
// a killed process never leaves it held). With wait it blocks until the lock
// is free or ctx ends; without, it returns a *BusyError at once. The holder's
// pid is written next to the lock so the message can name it.
func AcquireLock(ctx context.Context, path string, wait bool) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sync: lock directory: %w", err)
	}
	fl := flock.New(path, flock.SetPermissions(0o600))
	var ok bool
	var err error
	if wait {
		ok, err = fl.TryLockContext(ctx, 200*time.Millisecond)
	} else {
		ok, err = fl.TryLock()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("sync: take lock %s: %w", path, err)
	}
	pidPath := path + ".pid"
	if !ok {
		return nil, &BusyError{PID: readPID(pidPath), Path: path}
	}
	// Best effort: the pid only improves the message.
	_ = os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return &Lock{fl: fl, pidPath: pidPath}, nil
}

// Release frees the lock.
func (l *Lock) Release() error {
	if l == nil {
		return nil
	}
	_ = os.Remove(l.pidPath)
	return l.fl.Unlock()
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}
