package smart

import (
	"errors"
	"fmt"
)

// ErrInsecureBase is wrapped by errors for a base URL that is not https and
// not plain http on a loopback host.
var ErrInsecureBase = errors.New("smart: FHIR base must use https (plain http only for loopback hosts)")

// ErrInvalidGrant matches (with errors.Is) a *TokenError whose Code is
// "invalid_grant": the code or refresh token was rejected, whatever HTTP
// status the server chose (400, 401 and 403 are all seen).
var ErrInvalidGrant = errors.New("smart: invalid_grant")

// Kinds of DiscoveryError.
const (
	KindNotFound    = "not_found"   // 404 at both the well-known and metadata URLs
	KindNotJSON     = "not_json"    // an HTML page or other non-JSON answer
	KindHTTPStatus  = "http_status" // another unexpected HTTP status
	KindNetwork     = "network"     // the server could not be reached
	KindIncomplete  = "incomplete"  // JSON, but no authorization/token endpoints
	KindInsecure    = "insecure"    // plain http to a non-loopback host
	KindInvalidBase = "invalid"     // not an absolute http(s) URL
)

// DiscoveryError says why discovery failed (Kind: "not_found", "not_json",
// "http_status", "network", "incomplete", "insecure", "invalid") and has Hint().
type DiscoveryError struct {
	Base   string
	Kind   string
	Status int
	Err    error
}

func (e *DiscoveryError) Error() string {
	var what string
	switch e.Kind {
	case KindNotFound:
		what = "no SMART configuration found (HTTP 404)"
	case KindNotJSON:
		what = "the server answered with something other than JSON"
		if e.Status != 0 {
			what += fmt.Sprintf(" (HTTP %d)", e.Status)
		}
	case KindHTTPStatus:
		what = fmt.Sprintf("unexpected HTTP status %d", e.Status)
	case KindNetwork:
		what = "cannot reach the server"
	case KindIncomplete:
		what = "the server does not advertise SMART authorization and token endpoints"
	case KindInsecure:
		what = "insecure URL"
	case KindInvalidBase:
		what = "not a usable FHIR base URL"
	default:
		what = e.Kind
	}
	msg := "smart: discovery at " + e.Base + " failed: " + what
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *DiscoveryError) Unwrap() error { return e.Err }

// Hint says what the person can do about it.
func (e *DiscoveryError) Hint() string {
	switch e.Kind {
	case KindNotFound:
		return "this URL is not a SMART on FHIR server base; check the FHIR base URL"
	case KindNotJSON:
		return "the server sent a web page instead of JSON: the URL is probably a website or patient portal page, not the FHIR base URL; check the FHIR base URL (it often ends in /fhir, /R4 or /api/FHIR/R4)"
	case KindHTTPStatus:
		if e.Status >= 500 || e.Status == 429 {
			return "the server is having trouble; try again in a few minutes"
		}
		return "the server refused the discovery request; check the FHIR base URL"
	case KindNetwork:
		return "check your network connection and that the URL's host name is right"
	case KindIncomplete:
		return "this FHIR server does not offer SMART on FHIR sign-in for patient apps, or the URL is not its patient-access base; check the FHIR base URL with the portal's developer documentation"
	case KindInsecure:
		return "use the https:// address of the FHIR server (plain http is allowed only for 127.0.0.1, ::1 and localhost)"
	case KindInvalidBase:
		return "give the full FHIR base URL, e.g. https://fhir.example.org/api/FHIR/R4"
	}
	return ""
}

// TokenError is an OAuth error response from the token endpoint (RFC 6749
// section 5.2), or a non-JSON failure (Code "").
type TokenError struct {
	Status      int
	Code        string // e.g. "invalid_grant"
	Description string
	// Endpoint is "revocation" for errors from Revoke; "" means the token endpoint.
	Endpoint string
}

func (e *TokenError) Error() string {
	where := "token endpoint"
	if e.Endpoint != "" {
		where = e.Endpoint + " endpoint"
	}
	msg := "smart: " + where + ": "
	switch {
	case e.Code != "" && e.Status != 0:
		msg += fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	case e.Code != "":
		msg += e.Code
	default:
		msg += fmt.Sprintf("HTTP %d", e.Status)
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Is makes errors.Is(err, ErrInvalidGrant) true for an invalid_grant answer.
func (e *TokenError) Is(target error) bool {
	return target == ErrInvalidGrant && e.Code == "invalid_grant"
}
