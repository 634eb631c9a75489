package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// UnmarshalJSON accepts slow_page as nanoseconds or a duration string.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	var aux struct {
		plain
		SlowPage json.RawMessage `json:"slow_page"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*f = Faults(aux.plain)
	f.SlowPage = 0
	if len(aux.SlowPage) > 0 && string(aux.SlowPage) != "null" {
		var s string
		if err := json.Unmarshal(aux.SlowPage, &s); err == nil {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("sandbox: slow_page: %w", err)
			}
			f.SlowPage = d
		} else {
			var n int64
			if err := json.Unmarshal(aux.SlowPage, &n); err != nil {
				return fmt.Errorf("sandbox: slow_page: want nanoseconds or a duration string")
			}
			f.SlowPage = time.Duration(n)
		}
	}
	return nil
}

// SetFaults replaces the quirk switches (and restarts their counters).
func (s *Server) SetFaults(f Faults) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	f.DenyTypes = append([]string(nil), f.DenyTypes...)
	s.faults = f
	s.burst = f.Burst5xx
	s.fhirSeq, s.pageSeq = 0, 0
}

func (s *Server) currentFaults() Faults {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	f := s.faults
	f.DenyTypes = append([]string(nil), f.DenyTypes...)
	f.Burst5xx = s.burst
	return f
}

func (s *Server) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	var f Faults
	if err := json.Unmarshal(body, &f); err != nil {
		http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, s.currentFaults())
}

// requestFault applies the faults that hit any FHIR request (before the
// token is even looked at, as a gateway in front of a real server would).
// It reports whether it answered.
func (s *Server) requestFault(w http.ResponseWriter) bool {
	s.faultsMu.Lock()
	s.fhirSeq++
	n, f := s.fhirSeq, s.faults
	burst := s.burst
	if burst > 0 {
		s.burst--
	}
	s.faultsMu.Unlock()
	switch {
	case burst > 0:
		status := http.StatusInternalServerError
		if burst%2 == 0 {
			status = http.StatusServiceUnavailable
		}
		writeOutcome(w, status, "exception", "transient server error (sandbox fault burst_5xx)")
		return true
	case f.RateLimitEvery > 0 && n%f.RateLimitEvery == 0:
		ra := f.RetryAfter
		if ra <= 0 {
			ra = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		writeOutcome(w, http.StatusTooManyRequests, "throttled", "too many requests (sandbox fault rate_limit_every)")
		return true
	case f.HTMLErrorEvery > 0 && n%f.HTMLErrorEvery == 0:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>The upstream server did not answer.</p></body></html>\n")
		return true
	}
	return false
}

// pageFaults are the faults of one search page: whether to answer with HTML,
// whether to cut the body short, and the delay.
func (s *Server) pageFaults() (f Faults, truncate bool) {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	s.pageSeq++
	f = s.faults
	return f, f.TruncateEvery > 0 && s.pageSeq%f.TruncateEvery == 0
}
