package portals

import (
	"errors"
	"fmt"
)

// Sentinel errors for branching. Errors returned by this package wrap one of
// them when the cause is known and carry a Hint() string saying what to do.
var (
	// ErrInvalidName is wrapped when a portal name breaks the naming rules.
	ErrInvalidName = errors.New("portals: invalid portal name")
	// ErrInvalidURL is wrapped when a FHIR base (or import URL) is not an
	// https URL or a loopback http URL.
	ErrInvalidURL = errors.New("portals: invalid URL")
	// ErrConnected is wrapped when an operation needs the portal disconnected first.
	ErrConnected = errors.New("portals: portal is connected")
	// ErrBuiltin is wrapped when a built-in entry cannot be changed that way.
	ErrBuiltin = errors.New("portals: built-in portal")
	// ErrDuplicateBase is wrapped when a new entry would repeat another entry's FHIR base.
	ErrDuplicateBase = errors.New("portals: FHIR base already in the directory")
	// ErrNoClientID is wrapped by ClientIDError: the portal has no client id yet.
	ErrNoClientID = errors.New("portals: portal needs a client id")

	// Import errors.
	ErrNotJSON    = errors.New("portals: not JSON")
	ErrHTML       = errors.New("portals: got an HTML page, not JSON")
	ErrNotBundle  = errors.New("portals: not a FHIR Bundle")
	ErrTooLarge   = errors.New("portals: import is too large")
	ErrImportHTTP = errors.New("portals: download failed")
)

// hintError is an error with a "what to do" line.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }

// withHint wraps err with a hint line.
func withHint(err error, hint string) error { return &hintError{err: err, hint: hint} }

// errorf is fmt.Errorf plus a hint.
func errorf(hint, format string, args ...any) error {
	return withHint(fmt.Errorf(format, args...), hint)
}
