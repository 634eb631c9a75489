package cli

import (
	"context"
	"errors"
	"github.com/onerecord/onerecord/internal/hint"

	"github.com/onerecord/onerecord/internal/grant"
)

// Exit codes, documented in `onerecord help exit-codes` and docs/exit-codes.md.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitPartial     = 3
	ExitReconnect   = 4
	ExitInterrupted = 130
)

// UsageError marks an error in how the command was called (exit 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ExitError carries an explicit exit code with an optional message. Commands
// that finish their work but must report a partial result or a portal that
// needs reconnecting return one with Silent set: they already told the person.
type ExitCodeError struct {
	Code   int
	Err    error // may be nil
	Silent bool  // the command already printed what happened
}

func (e *ExitCodeError) Error() string {
	if e.Err == nil {
		return "exit status"
	}
	return e.Err.Error()
}
func (e *ExitCodeError) Unwrap() error { return e.Err }

// WithHint wraps err so that Main prints text as a hint line after it.
func WithHint(err error, text string) error { return hint.With(err, text) }

// exitCode is the single place that maps an error to the process exit code.
func exitCode(ctx context.Context, err error) int {
	var ec *ExitCodeError
	var ue *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ec):
		return ec.Code
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return ExitInterrupted
	case errors.As(err, &ue):
		return ExitUsage
	case grant.IsLapsed(err):
		return ExitReconnect
	default:
		return ExitError
	}
}

// hintFor returns the hint line for err, if any.
func hintFor(err error) string { return hint.Of(err) }
