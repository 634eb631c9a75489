package store

import (
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned when a portal, resource or cursor does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrBusy is returned when another onerecord process holds the database for
// longer than the busy timeout. Its message says so plainly.
var ErrBusy = errors.New("store: the store is busy (another onerecord process is writing)")

// ErrSchemaTooNew is returned by Open when the database was written by a
// newer onerecord than this one.
var ErrSchemaTooNew = errors.New("store: the store was created by a newer version of onerecord")

// BusyError is what a write (or Open) returns after waiting the whole busy
// timeout for another process that holds the database. It matches ErrBusy
// with errors.Is.
type BusyError struct {
	Path   string        // the database file
	Waited time.Duration // the busy timeout that ran out
	Err    error         // the driver's error
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("store: another onerecord process is using the store %s (waited %s)", e.Path, e.Waited)
}

// Unwrap lets errors.Is match both ErrBusy and the driver error.
func (e *BusyError) Unwrap() []error { return []error{ErrBusy, e.Err} }

// Hint says what the person can do.
func (e *BusyError) Hint() string {
	return "wait for the other onerecord command (for example a running sync) to finish, then try again"
}

// SchemaError says the database schema is newer than this binary knows.
type SchemaError struct {
	Path  string
	Found int // version recorded in the database
	Known int // newest version this binary has
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("store: %s has schema version %d but this onerecord only knows up to %d", e.Path, e.Found, e.Known)
}

// Is makes errors.Is(err, ErrSchemaTooNew) true.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaTooNew }

// Hint says what the person can do.
func (e *SchemaError) Hint() string {
	return "this store was written by a newer onerecord: install that version (or newer) to use it"
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED (any
// extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// isConstraint reports whether err is SQLite's SQLITE_CONSTRAINT (any
// extended code: unique, primary key, ...).
func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// wrap turns driver busy errors into *BusyError and prefixes others with
// what was being done. nil stays nil; ErrNotFound chains stay matchable.
func (s *Store) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if isBusy(err) {
		return &BusyError{Path: s.path, Waited: s.busyTimeout, Err: err}
	}
	return fmt.Errorf("store: %s: %w", what, err)
}
