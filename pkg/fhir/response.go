package fhir

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// badBody is a decode problem found in our own checks; decodeFailure turns
// it into a *MalformedError with the request's URL.
type badBody struct {
	reason string
	err    error
}

func (b *badBody) Error() string { return b.reason }
func (b *badBody) Unwrap() error { return b.err }

func malformed(reason string, args ...any) error {
	return &badBody{reason: fmt.Sprintf(reason, args...)}
}

const reasonHTML = "the server sent an HTML page instead of FHIR JSON"

// jsonBody checks that a 2xx response claims and starts like FHIR JSON and
// returns a buffered reader positioned at the start of the body. HTML is
// named as such: a portal's maintenance or sign-in page answered with 200 is
// a common failure.
func jsonBody(resp *http.Response) (*bufio.Reader, error) {
	ct := resp.Header.Get("Content-Type")
	switch {
	case isHTML(ct):
		return nil, malformed(reasonHTML)
	case ct != "" && !isJSONType(ct):
		return nil, malformed("the server sent %q content instead of FHIR JSON", mediaType(ct))
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(resp.Body)
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) == n {
			switch c := b[n-1]; c {
			case ' ', '\t', '\r', '\n':
				if n < 4096 {
					continue
				}
				err = malformed("the response starts with too much blank space")
			case '{':
				return br, nil
			case '<':
				err = malformed(reasonHTML)
			default:
				err = malformed("the response is not a JSON object")
			}
		} else if errors.Is(err, io.EOF) {
			err = malformed("the response was empty")
		}
		releaseBody(br)
		return nil, err
	}
}

// readerPool holds the buffered readers jsonBody hands out: one per response
// read, 64 KiB each, was a good part of a sync's garbage.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// releaseBody gives back a reader from jsonBody once nothing reads from it.
func releaseBody(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

// decodeFailure classifies an error met while reading or decoding a body.
func decodeFailure(ctx context.Context, u *url.URL, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("fhir: GET %s: %w", safeURL(u), ctx.Err())
	}
	me := &MalformedError{Method: http.MethodGet, URL: safeURL(u), Err: err}
	var bb *badBody
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &bb):
		me.Reason, me.Err = bb.reason, bb.err
	case errors.Is(err, io.ErrUnexpectedEOF):
		me.Reason = "the response ended early (truncated)"
	case errors.As(err, &se):
		me.Reason = fmt.Sprintf("invalid JSON near byte %d", se.Offset)
	case errors.As(err, &te):
		me.Reason = fmt.Sprintf("a JSON %s where FHIR expects something else (%s)", te.Value, te.Field)
	default:
		// A connection that broke while the body streamed.
		return fmt.Errorf("fhir: GET %s: reading the response: %w", safeURL(u), err)
	}
	return me
}

// resourceHeader is what onerecord needs of any resource.
type resourceHeader struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
}

// readJSONObject decodes one JSON object of at most limit bytes from the
// response, as the server sent it, and refuses trailing data.
func readJSONObject(resp *http.Response, limit int64) (json.RawMessage, error) {
	br, err := jsonBody(resp)
	if err != nil {
		return nil, err
	}
	defer releaseBody(br)
	lr := &io.LimitedReader{R: br, N: limit + 1}
	dec := json.NewDecoder(lr)
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if lr.N <= 0 {
			return nil, malformed("the response is larger than %d MiB", limit>>20)
		}
		return nil, eofIsTruncation(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return nil, malformed("unexpected data after the JSON object")
		}
		if lr.N <= 0 {
			return nil, malformed("the response is larger than %d MiB", limit>>20)
		}
		return nil, err
	}
	return raw, nil
}

// eofIsTruncation: inside a value, a clean EOF still means the body was cut.
func eofIsTruncation(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
