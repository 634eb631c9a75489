package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DefaultBusyTimeout is how long a write waits for another process holding
// the database before failing with ErrBusy.
const DefaultBusyTimeout = 10 * time.Second

// newPageSize is the page size of a database this package creates.
const newPageSize = 32768

// Options tune Open. The zero value is what the tool uses.
type Options struct {
	// BusyTimeout is how long to wait for another process's lock; 0 means
	// DefaultBusyTimeout.
	BusyTimeout time.Duration

	// walAutocheckpoint is the writer's automatic checkpoint in pages;
	// 0 keeps SQLite's default (1,000 pages). Tests lower it.
	walAutocheckpoint int
}

// Store is an open onerecord database. It is safe for concurrent use.
type Store struct {
	// w is the only connection that writes (MaxOpenConns 1): in-process
	// writers queue on it instead of racing each other into SQLITE_BUSY.
	// Its transactions begin IMMEDIATE so a write never has to upgrade a
	// read lock half-way (which could fail without waiting).
	w *sql.DB
	// r is a small pool of query-only connections; in WAL mode they read a
	// consistent snapshot while the writer works.
	r *sql.DB

	path        string
	busyTimeout time.Duration

	// kept holds the writer's statements that every upsert runs, prepared
	// once (see upsert.kept).
	keptMu sync.Mutex
	kept   map[string]*sql.Stmt

	// fresh holds the (portal, type) pairs this Store found without a row
	// and has inserted every row of since: their upserts skip the id
	// lookup for every batch, not only the first. It is only a hint: a
	// resource that does exist after all (repeated across pages, written by
	// another process, counters drifted) fails the insert on the unique
	// key, and UpsertResources forgets the pair and redoes the batch with
	// every id looked up.
	freshMu sync.Mutex
	fresh   map[freshKey]bool

	// dsnCommon opens a connection with the settings every connection has.
	dsnCommon string
	ckptOnce  sync.Once
	ckpt      *checkpointer // nil until the first upsert
}

type freshKey struct{ portal, typ string }

func (s *Store) isFresh(portal, typ string) bool {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	return s.fresh[freshKey{portal, typ}]
}

// setFresh marks or unmarks the types for the portal.
func (s *Store) setFresh(portal string, types []string, fresh bool) {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	if s.fresh == nil {
		s.fresh = map[freshKey]bool{}
	}
	for _, t := range types {
		if fresh {
			s.fresh[freshKey{portal, t}] = true
		} else {
			delete(s.fresh, freshKey{portal, t})
		}
	}
}

// prepareKept prepares keptQueries on the writer the first time it is
// called. It must not run inside a writer transaction.
func (s *Store) prepareKept(ctx context.Context) error {
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	if s.kept != nil {
		return nil
	}
	kept := make(map[string]*sql.Stmt, len(keptQueries))
	for _, q := range keptQueries {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range kept {
				st.Close()
			}
			return err
		}
		kept[q] = st
	}
	s.kept = kept
	return nil
}

// prepared returns the writer's statement for one of keptQueries, or nil.
func (s *Store) prepared(q string) *sql.Stmt {
	s.keptMu.Lock()
	defer s.keptMu.Unlock()
	return s.kept[q]
}

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations sorted by version. A file is
// named NNNN_what.sql; NNNN is its schema version.
func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: bad migration file name %q", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migrations are not numbered 1..n: %q", m.name)
		}
	}
	return ms, nil
}

// LatestSchemaVersion is the newest schema version this binary knows.
func LatestSchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// Open opens (creating if needed) the store at path: parent directory 0700,
// file 0600, WAL, busy timeout, migrations applied.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if strings.ContainsRune(abs, '?') {
		return nil, fmt.Errorf("store: the path %q contains '?', which the SQLite driver cannot open", abs)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	// Create the file ourselves so it is 0600 from the first byte; SQLite
	// gives the -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	f.Close()
	if err := tightenModes(abs); err != nil {
		return nil, err
	}

	s := &Store{path: abs, busyTimeout: opts.BusyTimeout}
	ms := int64(opts.BusyTimeout / time.Millisecond)
	// The driver cuts its parameters off at the first '?'.
	base := abs
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", ms))
	common.Add("_pragma", "foreign_keys(1)")
	// A new database gets 32 KB pages (SQLite's default is 4 KB): a
	// resource of about 1 KB plus its index entry then costs fewer page
	// writes, WAL frames and checkpoints (wal_autocheckpoint counts pages).
	// page_size only takes effect before the file is put in WAL mode, and
	// the driver runs the _pragma list sorted by name, so WAL comes from
	// the _journal_mode key, which it applies after that list. An existing
	// database keeps the page size it was created with.
	common.Add("_pragma", fmt.Sprintf("page_size(%d)", newPageSize))
	common.Set("_journal_mode", "WAL")
	// NORMAL in WAL mode cannot corrupt the database; a power cut may lose
	// the last commits, which the next sync fetches again.
	common.Add("_pragma", "synchronous(NORMAL)")
	common.Add("_pragma", "temp_store(MEMORY)")

	s.dsnCommon = base + "?" + common.Encode()
	wv := cloneValues(common)
	// The writer keeps SQLite's default page cache (2 MB). A 16 MB cache
	// made no write faster (inserts touch the index pages and append the
	// rest; the OS page cache holds the file) but filled up during a large
	// sync: `onerecord sync` peaked at 66 MB instead of 38 MB at 100,000
	// resources (docs/performance.md).
	wv.Add("_pragma", "cache_size(-2000)")
	if opts.walAutocheckpoint > 0 {
		wv.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", opts.walAutocheckpoint))
	}
	wv.Set("_txlock", "immediate")
	s.w, err = sql.Open("sqlite", base+"?"+wv.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, err
	}

	rv := cloneValues(common)
	// The driver applies _query_only after everything else, _journal_mode
	// included, so a reader never has to set up WAL when it is read-only.
	rv.Set("_query_only", "1")
	s.r, err = sql.Open("sqlite", base+"?"+rv.Encode())
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	if err := s.r.PingContext(ctx); err != nil {
		s.Close()
		return nil, s.wrap("open", err)
	}
	if err := tightenModes(abs); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// tightenModes makes the database file and its WAL companions 0600 (a file
// copied in from elsewhere may be wider). Windows has no such modes.
func tightenModes(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
	}
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the store. The last connection to close checkpoints the WAL
// into the database file.
func (s *Store) Close() error {
	var errs []error
	s.ckptOnce.Do(func() {}) // no checkpointer starts after this
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.close())
	}
	s.keptMu.Lock()
	for _, st := range s.kept {
		errs = append(errs, st.Close())
	}
	s.kept = nil
	s.keptMu.Unlock()
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

const createVersionTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`

// migrate applies pending migrations in one transaction. The version is
// read again inside the (IMMEDIATE, so exclusive for writers) transaction, so
// two processes opening a new store at once apply each migration once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	known := len(ms)
	v, err := s.readVersion(ctx, s.w)
	if err != nil {
		return s.wrap("read schema version", err)
	}
	if v > known {
		return &SchemaError{Path: s.path, Found: v, Known: known}
	}
	if v == known {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("migrate", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, createVersionTable); err != nil {
		return s.wrap("migrate", err)
	}
	v, err = s.readVersion(ctx, tx)
	if err != nil {
		return s.wrap("migrate", err)
	}
	if v > known {
		return &SchemaError{Path: s.path, Found: v, Known: known}
	}
	now := fmtTime(time.Now())
	for _, m := range ms[v:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return s.wrap("apply migration "+m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`, m.version, m.name, now); err != nil {
			return s.wrap("apply migration "+m.name, err)
		}
	}
	return s.wrap("migrate", tx.Commit())
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) readVersion(ctx context.Context, q queryer) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_migrations'`).Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}

// SchemaVersion is the applied migration version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	v, err := s.readVersion(ctx, s.r)
	return v, s.wrap("schema version", err)
}

// Verify runs SQLite's integrity check and checks that the maintained
// resource counters agree with the rows. It reads every page: seconds on a
// large store, meant for tests and a "doctor" command, not for status.
func (s *Store) Verify(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return s.wrap("integrity check", err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return s.wrap("integrity check", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Close(); err != nil {
		return s.wrap("integrity check", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: integrity check failed: %s", strings.Join(problems, "; "))
	}
	var bad int
	err = s.r.QueryRowContext(ctx, `
		WITH actual AS (
			SELECT portal, type, sum(deleted = 0) AS live, sum(deleted != 0) AS deleted
			FROM resources GROUP BY portal, type)
		SELECT count(*) FROM (
			SELECT a.portal FROM actual a LEFT JOIN resource_counts c USING (portal, type)
			WHERE c.live IS NOT a.live OR c.deleted IS NOT a.deleted
			UNION ALL
			SELECT c.portal FROM resource_counts c LEFT JOIN actual a USING (portal, type)
			WHERE (c.live != 0 OR c.deleted != 0) AND a.portal IS NULL)`).Scan(&bad)
	if err != nil {
		return s.wrap("verify counts", err)
	}
	if bad > 0 {
		return fmt.Errorf("store: resource counters disagree with stored rows for %d portal/type pairs", bad)
	}
	return nil
}
