// Package store is onerecord's local database: one SQLite file (pure-Go
// driver modernc.org/sqlite, WAL) holding the portal directory entries the
// person added, each portal's connection (grant metadata, never tokens), every
// FHIR resource exactly as the server sent it, the previous versions of
// changed resources, per-search sync cursors and a log of sync runs.
//
// Start with [Open]; the tables are described in docs/data-model.md. A
// *Store is safe for concurrent use: writes are serialised on one connection
// inside the process, reads run in parallel, and another process using the
// same file makes writes wait up to the busy timeout and then fail with
// [ErrBusy].
package store

import (
	"encoding/json"
	"time"
)

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
	// Hash is HashOf(Raw). Upserts compute it when it is ""; a caller may
	// set it (a sync hashes in its search goroutines, off the single
	// writer). It is not checked.
	Hash string
}

// StoredResource is a resource as stored.
type StoredResource struct {
	Resource  // its Hash is always set: hex SHA-256 of Raw
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
