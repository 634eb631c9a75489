package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is a sandbox portal.
type Server struct {
	opts Options
	data *db
	auth *authState
	key  []byte // HMAC key for id_tokens

	faultsMu sync.Mutex
	faults   Faults
	fhirSeq  int // FHIR requests seen, for the "every Nth" faults
	pageSeq  int // search pages served, for TruncateEvery
	burst    int // 5xx answers still to give

	stats statsCounter

	mu   sync.Mutex
	base string
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// New generates the data and returns a server that is not listening yet.
func New(opts Options) (*Server, error) {
	if opts.Patients <= 0 {
		opts.Patients = 1
	}
	if opts.Resources <= 0 {
		opts.Resources = 300
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = time.Hour
	}
	if opts.RefreshTTL == 0 {
		opts.RefreshTTL = 90 * 24 * time.Hour
	}
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = 60 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, data: newDB(), auth: newAuthState(), key: make([]byte, 32)}
	if _, err := rand.Read(s.key); err != nil {
		return nil, fmt.Errorf("sandbox: random key: %w", err)
	}
	if err := generate(s.data, opts); err != nil {
		return nil, err
	}
	if opts.DataDir != "" {
		if err := s.loadDir(opts.DataDir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close.
// It returns the FHIR base URL, e.g. http://127.0.0.1:41234/fhir.
func (s *Server) Start(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New("sandbox: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sandbox: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.base = "http://" + ln.Addr().String() + "/fhir"
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s.base, nil
}

// BaseURL is the FHIR base URL once started.
func (s *Server) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

// Close stops the listener and waits for requests in flight (up to ctx).
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	<-done
	return err
}

// baseFor is the FHIR base a request addresses: the started base, or (under
// httptest) the request's own host.
func (s *Server) baseFor(r *http.Request) string {
	if b := s.BaseURL(); b != "" {
		return b
	}
	return "http://" + r.Host + "/fhir"
}

// origin is the base without /fhir.
func (s *Server) origin(r *http.Request) string {
	return strings.TrimSuffix(s.baseFor(r), "/fhir")
}

// Handler is the whole portal as an http.Handler (for httptest).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", s.handleSmartConfig)
	mux.HandleFunc("GET /fhir/metadata", s.handleMetadata)
	mux.HandleFunc("/fhir/", s.handleFHIR)
	mux.HandleFunc("/fhir", s.handleFHIR)
	mux.HandleFunc("GET /auth/authorize", s.handleAuthorize)
	mux.HandleFunc("POST /auth/consent", s.handleConsent)
	mux.HandleFunc("POST /auth/token", s.handleToken)
	mux.HandleFunc("POST /auth/revoke", s.handleRevoke)
	mux.HandleFunc("GET /auth/manage", s.handleManage)
	mux.HandleFunc("POST /_control/revoke", func(w http.ResponseWriter, r *http.Request) {
		s.RevokeAll()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_control/faults", s.handleSetFaults)
	mux.HandleFunc("GET /_control/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.currentFaults())
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "onerecord sandbox portal\nFHIR base: %s\n", s.baseFor(r))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			s.stats.authHeader()
		}
		mux.ServeHTTP(w, r)
	})
}

// RevokeAll revokes every grant (a patient withdrawing access).
func (s *Server) RevokeAll() { s.auth.revokeAll() }

// Patients lists the patients.
func (s *Server) Patients() []PatientInfo {
	s.data.mu.RLock()
	defer s.data.mu.RUnlock()
	return append([]PatientInfo(nil), s.data.patients...)
}

// Counts returns, for a patient, the number of resources per type that a
// complete sync must store: the patient's compartment plus the shared
// resources (Practitioner, Organization, Location, Medication) it references.
func (s *Server) Counts(patientID string) map[string]int {
	s.data.mu.RLock()
	defer s.data.mu.RUnlock()
	return s.data.counts(patientID)
}

// UpdateResource changes a resource (bumping meta.versionId and
// meta.lastUpdated); AddResource adds one (raw FHIR JSON with resourceType
// and id); DeleteResource removes one from search results and reads.
func (s *Server) UpdateResource(typ, id string, mutate func(map[string]any)) error {
	s.data.mu.Lock()
	defer s.data.mu.Unlock()
	old := s.data.get(typ, id)
	if old == nil || old.deleted {
		return fmt.Errorf("sandbox: update %s/%s: %w", typ, id, errNotFound)
	}
	var m map[string]any
	if err := json.Unmarshal(old.raw, &m); err != nil {
		return fmt.Errorf("sandbox: update %s/%s: %w", typ, id, err)
	}
	if mutate != nil {
		mutate(m)
	}
	m["resourceType"], m["id"] = typ, id
	m["meta"] = map[string]any{
		"versionId":   fmt.Sprint(old.version + 1),
		"lastUpdated": s.now().Format(time.RFC3339Nano),
	}
	r, err := indexMap(m, s.now())
	if err != nil {
		return err
	}
	s.data.put(r)
	return nil
}

// AddResource adds a resource; an existing one with the same type and id is
// replaced as a new version.
func (s *Server) AddResource(raw []byte) error {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("sandbox: add resource: %w", err)
	}
	typ, _ := m["resourceType"].(string)
	id, _ := m["id"].(string)
	s.data.mu.Lock()
	defer s.data.mu.Unlock()
	version := 1
	if old := s.data.get(typ, id); old != nil {
		version = old.version + 1
	}
	m["meta"] = map[string]any{"versionId": fmt.Sprint(version), "lastUpdated": s.now().Format(time.RFC3339Nano)}
	r, err := indexMap(m, s.now())
	if err != nil {
		return err
	}
	s.data.put(r)
	if typ == "Patient" && version == 1 {
		s.data.patients = append(s.data.patients, patientInfo(m))
	}
	return nil
}

// DeleteResource removes a resource from reads and searches.
func (s *Server) DeleteResource(typ, id string) error {
	s.data.mu.Lock()
	defer s.data.mu.Unlock()
	r := s.data.get(typ, id)
	if r == nil || r.deleted {
		return fmt.Errorf("sandbox: delete %s/%s: %w", typ, id, errNotFound)
	}
	r.deleted = true
	r.version++
	r.updated = s.now()
	return nil
}

// now is the clock in UTC, to the millisecond (what lastUpdated carries).
func (s *Server) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func patientInfo(m map[string]any) PatientInfo {
	id, _ := m["id"].(string)
	info := PatientInfo{ID: id}
	info.BirthDate, _ = m["birthDate"].(string)
	if names, ok := m["name"].([]any); ok && len(names) > 0 {
		if n, ok := names[0].(map[string]any); ok {
			if t, ok := n["text"].(string); ok {
				info.Name = t
			} else {
				var parts []string
				if gs, ok := n["given"].([]any); ok {
					for _, g := range gs {
						if s, ok := g.(string); ok {
							parts = append(parts, s)
						}
					}
				}
				if f, ok := n["family"].(string); ok {
					parts = append(parts, f)
				}
				info.Name = strings.Join(parts, " ")
			}
		}
	}
	if info.Name == "" {
		info.Name = id
	}
	return info
}
