// Package fhir is a small FHIR R4 REST client for reading a patient's record:
// read, search with Bundle paging, page-at-a-time streaming decode,
// OperationOutcome errors and retries that honour Retry-After. It sends the
// bearer token only to URLs under the server's base, and refuses any other URL
// (a next link, a reference, a redirect) before a request is made.
//
// Start with New, then Capabilities and Search.
//
// The exported API in this file is a contract other packages code against;
// the implementation may add to it but must keep these signatures.
package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// Options configure a Client.
type Options struct {
	Base string       // FHIR base URL, e.g. https://fhir.example.org/r4 (https, or http on loopback)
	HTTP *http.Client // nil = a client with sensible timeouts
	// Token returns the bearer token for a request (nil = no Authorization header).
	Token func(ctx context.Context) (string, error)
	// MaxAttempts per request for 429, 5xx and network errors (default 6).
	MaxAttempts int
	// Sleep waits between attempts (default: a context-aware timer). Tests inject a fast one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Reauthorize is called once when a request answers 401: if it returns
	// nil (e.g. it refreshed the token), the request is retried once with a
	// new token; its error (e.g. a lapsed grant) is returned as is.
	Reauthorize func(ctx context.Context) error
	// PageSize is the _count sent with searches when the caller does not set it (default 200).
	PageSize int
}

// Client talks to one FHIR server. It is safe for concurrent use.
type Client struct {
	opts     Options
	base     *url.URL     // normalised: no trailing slash, no query, no fragment
	baseStr  string       // base.String()
	hc       *http.Client // a copy of Options.HTTP that refuses redirects off the base
	requests atomic.Int64
	maxPage  int64 // bound on one search page's body (defaultMaxPageBody; tests lower it)
}

// Entry is one resource of a search result, decoded just enough to store it.
type Entry struct {
	Type, ID, VersionID, LastUpdated string
	Mode                             string // search.mode: "match", "include" or "" ("outcome" entries go to Page.Outcomes)
	Raw                              json.RawMessage
}

// Page is one decoded Bundle page of a search.
type Page struct {
	Number      int // 1-based
	Entries     []Entry
	Total       int    // Bundle.total, -1 when absent
	Next        string // next link ("" on the last page)
	LastUpdated string // Bundle.meta.lastUpdated, may be ""
	// Outcomes are the OperationOutcome entries of the page (search.mode
	// "outcome"): server warnings such as "too many results", not resources.
	Outcomes []OperationOutcome
}

// SearchStats summarise one search.
type SearchStats struct {
	Pages, Entries, Requests int
	// Outcomes counts entries with search.mode "outcome" (OperationOutcome
	// warnings from the server), which are not resources and are skipped.
	Outcomes int
}

// Capabilities is what onerecord needs from a CapabilityStatement.
type Capabilities struct {
	Raw         json.RawMessage
	FHIRVersion string
	Types       map[string]TypeCapability
	// Operations are the server-level (rest.operation) operation names,
	// without "$"; type-level ones are in TypeCapability.Operations, e.g.
	// "everything" on Patient.
	Operations []string
	// Lenient is set when the statement did not fit the strict R4 model
	// (github.com/samply/golang-fhir-models) and was read field by field.
	Lenient bool
}

// TypeCapability is one rest.resource entry.
type TypeCapability struct {
	Interactions []string // "read", "search-type", ...
	SearchParams []string // "patient", "category", "_lastUpdated", ...
	Operations   []string // "everything", ...
	// Combinations are the search-parameter sets the statement declares
	// with the search-parameter-combination extension (US Core uses it to
	// say e.g. patient+category), each sorted.
	Combinations [][]string
}

// StatusError is a non-2xx answer. Outcome is set when the body was an
// OperationOutcome. URL carries no query values (they can hold identifiers).
type StatusError struct {
	Method      string
	URL         string
	Status      int
	ContentType string
	RetryAfter  time.Duration
	Outcome     *OperationOutcome
	// AfterReauthorize is set on a 401 that answered the retry made after
	// Options.Reauthorize succeeded: the fresh token was refused too, which
	// callers may treat as a lapsed grant.
	AfterReauthorize bool
}

// OperationOutcome is the part of a FHIR OperationOutcome onerecord reads.
type OperationOutcome struct {
	Issue []OutcomeIssue `json:"issue"`
}

// OutcomeIssue is one OperationOutcome.issue.
type OutcomeIssue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics,omitempty"`
}

// ErrForeignURL is wrapped when a URL (next link, reference, redirect) is not
// under the client's base: no request is made and no token is sent.
var ErrForeignURL = errors.New("fhir: URL is not under the FHIR base")

// ErrMalformed is wrapped when a response is not the FHIR JSON expected: an
// HTML page, a truncated body, invalid JSON, a Bundle of the wrong type.
var ErrMalformed = errors.New("fhir: malformed response")
