package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxErrorBody bounds how much of a non-2xx body is read to look for an
// OperationOutcome; the rest is discarded.
const maxErrorBody = 64 << 10

// maxDiagnostics bounds one issue's diagnostics in an error message.
const maxDiagnostics = 160

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString("fhir: ")
	b.WriteString(e.Method)
	b.WriteString(" ")
	b.WriteString(e.URL)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.Status))
	if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" ")
		b.WriteString(strings.ToLower(t))
	}
	if e.Outcome != nil && len(e.Outcome.Issue) > 0 {
		b.WriteString(" (")
		b.WriteString(e.Outcome.Summary())
		b.WriteString(")")
	} else if isHTML(e.ContentType) {
		b.WriteString(" (an HTML page)")
	}
	if e.AfterReauthorize {
		b.WriteString(", again after reauthorizing")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Hint says what a person can do about the error.
func (e *StatusError) Hint() string {
	switch {
	case e.Status == http.StatusUnauthorized:
		return "the server refused the access token: the connection may need to be renewed"
	case e.Status == http.StatusForbidden:
		return "the access granted does not cover this data"
	case e.Status == http.StatusTooManyRequests:
		return "the server is limiting requests: try again later"
	case e.Status >= 500:
		return "the server is having trouble: try again later"
	}
	return ""
}

// Temporary reports whether the status is one that may go away on its own
// (429 and 5xx).
func (e *StatusError) Temporary() bool { return retryableStatus(e.Status) }

// IsStatus reports whether err is (or wraps) a *StatusError with that status.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == code
}

// Summary is a short, bounded description of the issues, e.g.
// `error required: "category is required"`. Diagnostics are the server's
// words about the request, shortened.
func (o *OperationOutcome) Summary() string {
	if o == nil {
		return ""
	}
	parts := make([]string, 0, len(o.Issue))
	for i, is := range o.Issue {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(o.Issue)-3))
			break
		}
		s := strings.TrimSpace(is.Severity + " " + is.Code)
		if d := shorten(is.Diagnostics, maxDiagnostics); d != "" {
			s += ": " + strconv.Quote(d)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// shorten trims s to at most n bytes on a rune boundary, on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// MalformedError is a response that is not the FHIR JSON expected. It wraps
// ErrMalformed; Reason says what was wrong in words a person understands.
type MalformedError struct {
	Method, URL string // URL as in StatusError: no query values
	Reason      string
	Err         error // underlying decode error, if any
}

func (e *MalformedError) Error() string {
	return "fhir: malformed response to " + e.Method + " " + e.URL + ": " + e.Reason
}

// Unwrap lets errors.Is find ErrMalformed and the underlying error.
func (e *MalformedError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrMalformed, e.Err}
	}
	return []error{ErrMalformed}
}

// Hint says what a person can do about the error.
func (e *MalformedError) Hint() string {
	return "the server did not answer with complete FHIR data; it may be overloaded or down for maintenance: try again later"
}

// mediaType returns the lower-case media type of a Content-Type value.
func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, _, _ = strings.Cut(ct, ";")
	}
	return strings.ToLower(strings.TrimSpace(mt))
}

func isHTML(ct string) bool {
	mt := mediaType(ct)
	return mt == "text/html" || mt == "application/xhtml+xml"
}

// isJSONType accepts application/fhir+json, application/json,
// application/json+fhir (DSTU2-era servers still send it) and any +json type.
func isJSONType(ct string) bool {
	mt := mediaType(ct)
	return mt == "application/json" || mt == "application/json+fhir" || strings.HasSuffix(mt, "+json")
}

// newStatusError reads at most maxErrorBody of a non-2xx body, parses an
// OperationOutcome if there is one, and never keeps any other body text.
func newStatusError(req *http.Request, resp *http.Response) *StatusError {
	e := &StatusError{
		Method:      req.Method,
		URL:         safeURL(req.URL),
		Status:      resp.StatusCode,
		ContentType: resp.Header.Get("Content-Type"),
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if !isHTML(e.ContentType) {
		e.Outcome = parseOutcome(body)
	}
	// Some servers quote the token they refused; the diagnostics are
	// printed and kept in sync reports.
	if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok && len(tok) >= 4 && e.Outcome != nil {
		for i := range e.Outcome.Issue {
			e.Outcome.Issue[i].Diagnostics = strings.ReplaceAll(e.Outcome.Issue[i].Diagnostics, tok, "[redacted]")
		}
	}
	return e
}

// parseOutcome returns the OperationOutcome in body, or nil.
func parseOutcome(body []byte) *OperationOutcome {
	var oo struct {
		ResourceType string         `json:"resourceType"`
		Issue        []OutcomeIssue `json:"issue"`
	}
	if len(body) == 0 || json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return nil
	}
	return &OperationOutcome{Issue: oo.Issue}
}
