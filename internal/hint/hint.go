// Package hint attaches a "what to do" line to an error. The CLI prints it as
// "hint: ..." under the error message. Any error type can offer a hint by
// having a Hint() string method; With wraps an error that has none.
package hint

import "errors"

// Error is an error with a hint line.
type Error struct {
	Err  error
	Text string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Hint returns the hint line.
func (e *Error) Hint() string { return e.Text }

// With wraps err so that it carries text as its hint; nil stays nil.
func With(err error, text string) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Text: text}
}

// Of returns the outermost hint in err's chain, or "".
func Of(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}
