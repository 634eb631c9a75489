package store

import (
	"database/sql"
	"fmt"
	"time"
)

// timeLayout is fixed width so stored times sort correctly as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// fmtTime returns the stored form of t: NULL for the zero time.
func fmtTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(ns sql.NullString) (time.Time, error) {
	if !ns.Valid || ns.String == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, ns.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad stored time %q: %w", ns.String, err)
	}
	return t.UTC(), nil
}

// timeScanner collects parse errors so scanning code stays readable.
type timeScanner struct{ err error }

func (ts *timeScanner) t(ns sql.NullString) time.Time {
	t, err := parseTime(ns)
	if err != nil && ts.err == nil {
		ts.err = err
	}
	return t
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
