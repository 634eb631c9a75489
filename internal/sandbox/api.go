// Package sandbox is a local SMART-on-FHIR patient portal on loopback: an
// OAuth 2.0 authorization server (consent page, PKCE S256, refresh rotation,
// revocation) and a FHIR R4 server over deterministic synthetic patients. It
// is what the tests, the benchmarks, `onerecord sandbox` and `onerecord demo`
// run against, and it can misbehave like real portals do (quirk switches).
//
// Start with New and Server.Start; the FHIR base is BaseURL() (path /fhir).
//
// Endpoints (origin = base without /fhir):
//
//	GET  /fhir/.well-known/smart-configuration, GET /fhir/metadata   no token needed
//	GET  /fhir/{type}/{id}, GET /fhir/{type}?...                     Bearer token needed
//	GET  /auth/authorize   consent page (#approve, #deny), or an immediate redirect with AutoApprove
//	POST /auth/consent     the consent form
//	POST /auth/token       authorization_code and refresh_token grants
//	POST /auth/revoke      RFC 7009 (a refresh token ends its whole grant)
//	GET  /auth/manage      the grants, as a page
//	POST /_control/revoke  revoke every grant; POST /_control/faults  Faults as JSON
//
// Behaviour worth knowing: an id_token is issued only when openid was
// granted, a refresh token only when offline_access was granted (and
// RefreshTTL >= 0); the token response always names the patient. A search
// of a compartment type for another patient answers 403; a read of another
// patient's resource 404; a deleted resource 410. Without a patient
// parameter, searches cover the granted patient. Next links carry an opaque
// _page token holding the position in a stable per-(type, patient) order, so
// changes while paging never repeat or skip a resource.
//
// Files by concept: server.go (lifecycle, routing), auth.go (authorize,
// consent, token, revocation), discovery.go (smart-configuration,
// CapabilityStatement), fhir.go (read, search, paging), data.go (the indexed
// resource set), generate.go (synthetic patients), load.go (Bundles from
// files), faults.go (quirk switches), stats.go (counters).
//
// The exported API is a contract other packages code against; the
// implementation may add to it but must keep these signatures.
package sandbox

import (
	"time"
)

// Options configure a sandbox. Zero values take defaults.
type Options struct {
	Patients    int           // default 1
	Resources   int           // total resources to generate across patients, shared ones included (default 300)
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

	// Clients are confidential clients (client id -> secret): their token
	// requests must carry that secret (client_secret in the body, or Basic).
	// Any other client id is treated as a public client.
	Clients map[string]string
	// GrantTTL, when > 0, ends every grant that long after consent (refresh
	// then fails with invalid_grant) and token responses carry
	// access_grant_expiration (Unix seconds), as CMS Blue Button does.
	GrantTTL time.Duration
}

// Faults are quirk switches, settable at run time (SetFaults or
// POST /_control/faults with this struct as JSON). slow_page accepts a
// number of nanoseconds or a Go duration string ("250ms").
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
	// RefreshErrorStatus is the HTTP status of invalid_grant answers to a
	// refresh with an expired or revoked refresh token: 400 (default), or 401
	// or 403 as some real servers answer.
	RefreshErrorStatus int `json:"refresh_error_status"`
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
