// Package sandbox is a local SMART-on-FHIR patient portal on loopback: an
// OAuth 2.0 authorization server (consent page, PKCE S256, refresh rotation,
// revocation) and a FHIR R4 server over deterministic synthetic patients. It
// is what the tests, the benchmarks, `onerecord sandbox` and `onerecord demo`
// run against, and it can misbehave like real portals do (quirk switches).
//
// The exported API in this file is a contract other packages code against;
// the implementation may add to it but must keep these signatures.
package sandbox

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Options configure a sandbox. Zero values take defaults.
type Options struct {
	Patients    int           // default 1
	Resources   int           // total resources to generate across patients (default 300)
	Seed        int64         // default 1
	DataDir     string        // load FHIR Bundles (*.json) from here in addition to generated data
	AutoApprove bool          // authorize redirects at once (first patient, every scope asked)
	AccessTTL   time.Duration // default 1h
	RefreshTTL  time.Duration // default 90 days; <0 = issue no refresh tokens
	CodeTTL     time.Duration // default 60s
	// NoRotation keeps the same refresh token on refresh (Oracle Health style);
	// by default every refresh rotates it and the old one becomes single-use-spent.
	NoRotation bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Faults are quirk switches, settable at run time (SetFaults or
// POST /_control/faults with this struct as JSON).
type Faults struct {
	CategoryRequired bool          `json:"category_required"` // Observation/CarePlan search without category -> 400 OperationOutcome
	IntentRequired   bool          `json:"intent_required"`   // MedicationRequest search without intent -> 400
	RateLimitEvery   int           `json:"rate_limit_every"`  // every Nth FHIR request -> 429 with Retry-After
	RetryAfter       int           `json:"retry_after"`       // seconds in Retry-After (default 1)
	Burst5xx         int           `json:"burst_5xx"`         // the next N FHIR requests answer 500/503 alternately
	SlowPage         time.Duration `json:"slow_page"`         // delay before every search page
	HTMLErrorEvery   int           `json:"html_error_every"`  // every Nth FHIR request -> 502 HTML page
	HTMLAsOK         bool          `json:"html_as_ok"`        // searches answer 200 with an HTML page
	TruncateEvery    int           `json:"truncate_every"`    // every Nth search page body is cut short
	ForeignNextBase  string        `json:"foreign_next_base"` // next links point at this other base instead of ours
	DenyTypes        []string      `json:"deny_types"`        // searches of these types -> 403 (scope not granted)
	NoLastUpdated    bool          `json:"no_last_updated"`   // ignore _lastUpdated and leave it out of metadata
}

// Stats count what the sandbox served.
type Stats struct {
	FHIRRequests  int            // every request under /fhir except discovery and metadata
	ByType        map[string]int // FHIR requests per resource type
	TokenRequests int
	Refreshes     int
	ReuseDetected int // rotated refresh token presented again (grant revoked)
	AuthHeaders   int // requests that carried Authorization
}

// PatientInfo describes one generated or loaded patient.
type PatientInfo struct {
	ID, Name, BirthDate string
}

// Server is a sandbox portal.
type Server struct{}

var errUnimplemented = errors.New("sandbox: not implemented yet")

// New generates the data and returns a server that is not listening yet.
func New(opts Options) (*Server, error) { return nil, errUnimplemented }

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close.
// It returns the FHIR base URL, e.g. http://127.0.0.1:41234/fhir.
func (s *Server) Start(addr string) (string, error) { return "", errUnimplemented }

// Handler is the whole portal as an http.Handler (for httptest).
func (s *Server) Handler() http.Handler { return nil }

// BaseURL is the FHIR base URL once started.
func (s *Server) BaseURL() string { return "" }

// Close stops the listener.
func (s *Server) Close(ctx context.Context) error { return nil }

// SetFaults replaces the quirk switches.
func (s *Server) SetFaults(f Faults) {}

// RevokeAll revokes every grant (a patient withdrawing access).
func (s *Server) RevokeAll() {}

// Stats returns a copy of the counters; ResetStats zeroes them.
func (s *Server) Stats() Stats { return Stats{} }
func (s *Server) ResetStats()  {}

// Patients lists the patients.
func (s *Server) Patients() []PatientInfo { return nil }

// Counts returns, for a patient, the number of resources per type that a
// complete sync must store: the patient's compartment plus the shared
// resources (Practitioner, Organization, Location, Medication) it references.
func (s *Server) Counts(patientID string) map[string]int { return nil }

// UpdateResource changes a resource (bumping meta.versionId and
// meta.lastUpdated); AddResource adds one (raw FHIR JSON with resourceType
// and id); DeleteResource removes one from search results and reads.
func (s *Server) UpdateResource(typ, id string, mutate func(map[string]any)) error {
	return errUnimplemented
}
func (s *Server) AddResource(raw []byte) error        { return errUnimplemented }
func (s *Server) DeleteResource(typ, id string) error { return errUnimplemented }
