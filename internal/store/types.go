// Package store is onerecord's local database: one SQLite file (pure-Go
// driver modernc.org/sqlite, WAL) holding the portal directory entries the
// person added, each portal's connection (grant metadata, never tokens), every
// FHIR resource exactly as the server sent it, the previous versions of
// changed resources, per-search sync cursors and a log of sync runs.
//
// The exported API in this file is a contract other packages code against;
// the implementation may add to it but must keep these signatures.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// ErrNotFound is returned when a portal, resource or cursor does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrBusy is returned when another onerecord process holds the database for
// longer than the busy timeout. Its message says so plainly.
var ErrBusy = errors.New("store: the store is busy (another onerecord process is writing)")

// Portal is a directory entry the store keeps (user-added, imported, or a
// built-in once it has been connected) together with its connection state.
type Portal struct {
	Name         string // unique, lower-case, e.g. "sandbox"
	DisplayName  string
	FHIRBase     string // no trailing slash
	ClientID     string
	Scope        string // requested scope override; "" = defaults
	RedirectPort int    // 0 = random loopback port
	Confidential bool   // a client secret lives in the keychain
	Source       string // "builtin", "user", "import"
	BrandURL     string // portal/website URL from a brands bundle, informational

	// Cached discovery results (raw JSON), refreshed on connect.
	SMARTConfig json.RawMessage
	Capability  json.RawMessage // CapabilityStatement; cached for the query planner

	Conn Connection
}

// Connection states.
const (
	StateNotConnected = "not_connected"
	StateConnected    = "connected"
	StateDisconnected = "disconnected"
)

// Connection is a portal's grant metadata. It never holds tokens.
type Connection struct {
	State            string // one of the State* constants
	Reason           string // why disconnected, human words: "refresh rejected", "disconnected by you"
	DisconnectedAt   time.Time
	ConnectedAt      time.Time
	PatientID        string
	PatientName      string
	PatientBirthDate string
	GrantedScope     string
	HasRefreshToken  bool
	AccessExpiresAt  time.Time // zero = unknown
	GrantExpiresAt   time.Time // zero = unknown
	LastSyncAt       time.Time // last successful (complete) sync
	LastSyncStatus   string    // "ok", "partial", "failed", "reconnect"
}

// Resource is one FHIR resource as received.
type Resource struct {
	Type        string
	ID          string
	VersionID   string // meta.versionId, may be ""
	LastUpdated string // meta.lastUpdated as sent, may be ""
	Raw         json.RawMessage
}

// StoredResource is a resource as stored.
type StoredResource struct {
	Resource
	Hash      string // hex sha256 of Raw
	FetchedAt time.Time
	Deleted   bool
	DeletedAt time.Time
}

// UpsertCounts says what a batch of upserts did.
type UpsertCounts struct {
	New, Changed, Unchanged int
}

// Cursor is the incremental-sync position of one search (portal, key), where
// key names the search (e.g. "Observation?category=laboratory").
type Cursor struct {
	Key         string
	LastUpdated string // highest meta.lastUpdated seen or the Bundle's meta.lastUpdated; "" = none
	Complete    bool   // the last pull of this search ran to the end
	UpdatedAt   time.Time
}

// TypeResult is one resource type's outcome inside a sync run.
type TypeResult struct {
	Type                             string
	Status                           string // "ok", "not_granted", "failed", "skipped"
	Error                            string // short, no health data
	New, Changed, Unchanged, Deleted int
	Requests                         int
}

// Run is one sync run of one portal.
type Run struct {
	ID         int64
	Portal     string
	StartedAt  time.Time
	FinishedAt time.Time
	Status     string // "running", "ok", "partial", "failed", "reconnect", "interrupted"
	Types      []TypeResult
}

// Ref names a resource by type and id.
type Ref struct{ Type, ID string }

var errUnimplemented = errors.New("store: not implemented yet")

// Store is an open onerecord database. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the store at path: parent directory 0700,
// file 0600, WAL, busy timeout, migrations applied.
func Open(ctx context.Context, path string) (*Store, error) { return nil, errUnimplemented }

func (s *Store) Close() error { return errUnimplemented }

// SchemaVersion is the applied migration version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) { return 0, errUnimplemented }

// PutPortal inserts or replaces a portal's directory part; it keeps the stored
// Connection unless p.Conn.State is set.
func (s *Store) PutPortal(ctx context.Context, p Portal) error { return errUnimplemented }

// GetPortal returns ErrNotFound for an unknown name.
func (s *Store) GetPortal(ctx context.Context, name string) (Portal, error) {
	return Portal{}, errUnimplemented
}

// ListPortals returns every stored portal sorted by name.
func (s *Store) ListPortals(ctx context.Context) ([]Portal, error) { return nil, errUnimplemented }

// DeletePortal removes a portal entry; purge also deletes its resources,
// history, cursors and runs. Without purge, a portal with stored resources
// keeps them (the entry is kept too, marked not connected).
func (s *Store) DeletePortal(ctx context.Context, name string, purge bool) error {
	return errUnimplemented
}

// SetConnection replaces a portal's connection state.
func (s *Store) SetConnection(ctx context.Context, name string, c Connection) error {
	return errUnimplemented
}

// SetDiscovery caches the portal's SMART configuration and CapabilityStatement.
func (s *Store) SetDiscovery(ctx context.Context, name string, smartConfig, capability json.RawMessage) error {
	return errUnimplemented
}

// UpsertResources stores a batch in one transaction. A resource whose content
// hash differs from the stored one is "changed": the old version goes to
// history first. A deleted resource seen again is undeleted (counted changed).
func (s *Store) UpsertResources(ctx context.Context, portal string, rs []Resource, fetchedAt time.Time) (UpsertCounts, error) {
	return UpsertCounts{}, errUnimplemented
}

// GetResource returns ErrNotFound when absent.
func (s *Store) GetResource(ctx context.Context, portal, typ, id string) (StoredResource, error) {
	return StoredResource{}, errUnimplemented
}

// History returns previous versions of a resource, oldest first.
func (s *Store) History(ctx context.Context, portal, typ, id string) ([]StoredResource, error) {
	return nil, errUnimplemented
}

// MarkDeletedExcept marks every not-deleted resource of typ whose id is not in
// seen as deleted (never removes rows) and returns how many it marked.
func (s *Store) MarkDeletedExcept(ctx context.Context, portal, typ string, seen map[string]bool) (int, error) {
	return 0, errUnimplemented
}

// MissingRefs returns the refs that are not stored (or stored as deleted).
func (s *Store) MissingRefs(ctx context.Context, portal string, refs []Ref) ([]Ref, error) {
	return nil, errUnimplemented
}

// CountResources returns not-deleted resources of a portal per type.
func (s *Store) CountResources(ctx context.Context, portal string) (map[string]int, error) {
	return nil, errUnimplemented
}

// ResourceTotals returns not-deleted resources per portal, from maintained
// counters (fast at millions of rows).
func (s *Store) ResourceTotals(ctx context.Context) (map[string]int, error) {
	return nil, errUnimplemented
}

// GetCursor returns ErrNotFound when the search has no cursor yet.
func (s *Store) GetCursor(ctx context.Context, portal, key string) (Cursor, error) {
	return Cursor{}, errUnimplemented
}

// SetCursor stores a search's cursor.
func (s *Store) SetCursor(ctx context.Context, portal string, c Cursor) error {
	return errUnimplemented
}

// BeginRun records the start of a sync run.
func (s *Store) BeginRun(ctx context.Context, portal string, started time.Time) (int64, error) {
	return 0, errUnimplemented
}

// FinishRun records a run's outcome and per-type results.
func (s *Store) FinishRun(ctx context.Context, id int64, status string, finished time.Time, types []TypeResult) error {
	return errUnimplemented
}

// LastRun returns the newest run of a portal (ErrNotFound when none).
func (s *Store) LastRun(ctx context.Context, portal string) (Run, error) {
	return Run{}, errUnimplemented
}
