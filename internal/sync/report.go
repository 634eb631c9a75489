package sync

import (
	"sort"
	"time"
)

// Portal statuses in a Report.
const (
	StatusOK          = "ok"          // every planned search and reference fetch completed
	StatusPartial     = "partial"     // some types failed (transiently); the rest is stored
	StatusFailed      = "failed"      // nothing could be fetched this run
	StatusReconnect   = "reconnect"   // the grant has lapsed: the person must reconnect
	StatusInterrupted = "interrupted" // the run was cancelled
)

// Type statuses in a TypeReport.
const (
	TypeOK          = "ok"
	TypeNotGranted  = "not_granted" // the scopes exclude it, or the server answered 403
	TypeFailed      = "failed"      // with Error saying why
	TypeInterrupted = "interrupted"
	TypeSkipped     = "skipped" // not reached (the portal's grant lapsed first)
)

// Report is the completeness report of one Run. Its JSON form is the
// `onerecord sync --json` output (documented in docs/sync.md).
type Report struct {
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at"`
	Portals    []PortalReport `json:"portals"`
	Totals     Counts         `json:"totals"`
}

// Counts are resource counts.
type Counts struct {
	Fetched   int `json:"fetched"`
	New       int `json:"new"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Deleted   int `json:"deleted"`
	Requests  int `json:"requests"`
}

func (c *Counts) add(o Counts) {
	c.Fetched += o.Fetched
	c.New += o.New
	c.Changed += o.Changed
	c.Unchanged += o.Unchanged
	c.Deleted += o.Deleted
	c.Requests += o.Requests
}

// PortalReport is one portal's outcome.
type PortalReport struct {
	Portal string `json:"portal"`
	Status string `json:"status"`
	// Error says why the portal failed or was interrupted; Reason and
	// LapsedAt say why and when its access ended (status reconnect).
	Error string `json:"error,omitempty"`
	// Hint says what to do about Error when the cause offered one (e.g. how
	// to unlock the keychain).
	Hint        string       `json:"hint,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	LapsedAt    time.Time    `json:"lapsed_at,omitzero"`
	Reconnected bool         `json:"reconnected,omitempty"`
	RunID       int64        `json:"run_id,omitempty"`
	Planned     int          `json:"planned_searches"`
	Types       []TypeReport `json:"types"`
	References  RefReport    `json:"references"`
	Totals      Counts       `json:"totals"`
}

// TypeReport is one resource type's outcome in one portal.
type TypeReport struct {
	Type     string `json:"type"`
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
	Searches int    `json:"searches"`  // planned searches (or reads) of this type
	Complete int    `json:"completed"` // searches that ran to their last page
	Counts
}

// RefReport summarises the referenced-resource phase.
type RefReport struct {
	Missing    int `json:"missing"`     // referenced and not stored before this phase
	Fetched    int `json:"fetched"`     // read and stored
	Gone       int `json:"gone"`        // 404/410 at the server
	NotGranted int `json:"not_granted"` // 403 or outside the granted scopes
	Failed     int `json:"failed"`      // transient failures
	Refused    int `json:"refused"`     // absolute references to another server (never followed)
}

// NeedsReconnect lists the portals whose access has lapsed.
func (r *Report) NeedsReconnect() []PortalReport {
	var out []PortalReport
	for _, p := range r.Portals {
		if p.Status == StatusReconnect {
			out = append(out, p)
		}
	}
	return out
}

// Complete reports whether every portal finished with status ok.
func (r *Report) Complete() bool {
	for _, p := range r.Portals {
		if p.Status != StatusOK {
			return false
		}
	}
	return true
}

// Portal returns the report of one portal (nil if absent).
func (r *Report) Portal(name string) *PortalReport {
	for i := range r.Portals {
		if r.Portals[i].Portal == name {
			return &r.Portals[i]
		}
	}
	return nil
}

// Type returns the report of one type (nil if absent).
func (p *PortalReport) Type(name string) *TypeReport {
	for i := range p.Types {
		if p.Types[i].Type == name {
			return &p.Types[i]
		}
	}
	return nil
}

func (r *Report) finish() {
	sort.Slice(r.Portals, func(i, j int) bool { return r.Portals[i].Portal < r.Portals[j].Portal })
	r.Totals = Counts{}
	for _, p := range r.Portals {
		r.Totals.add(p.Totals)
	}
}

// EventKind says what a progress Event reports.
type EventKind int

const (
	EventPlanned    EventKind = iota + 1 // Searches more searches were planned (added at run time too)
	EventPage                            // one page of Type was stored: Entries resources
	EventSearchDone                      // one search finished (any outcome)
	EventTypeDone                        // every search of Type finished: Result
	EventPortalDone                      // the portal finished: Status and Totals
)

// Event is a progress notification. Progress callbacks are called from
// several goroutines and must be safe for concurrent use.
type Event struct {
	Kind     EventKind
	Portal   string
	Type     string
	Searches int
	Entries  int
	Result   *TypeReport // EventTypeDone
	Status   string      // EventPortalDone
	Totals   *Counts     // EventPortalDone: the portal's totals, references included
}
