package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestOpenFromEmpty(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "onerecord.db")
	s := openAt(t, path, Options{})

	v, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != LatestSchemaVersion() || v < 1 {
		t.Fatalf("schema version = %d, want %d", v, LatestSchemaVersion())
	}
	var mode string
	if err := s.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	for _, db := range []struct {
		name string
		q    queryer
	}{{"writer", s.w}, {"reader", s.r}} {
		var fk, busy int
		if err := db.q.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("%s foreign_keys = %d, %v", db.name, fk, err)
		}
		if err := db.q.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != 10000 {
			t.Errorf("%s busy_timeout = %d, %v", db.name, busy, err)
		}
	}
	// Readers cannot write, even by mistake.
	if _, err := s.r.ExecContext(ctx, `DELETE FROM portals`); err == nil {
		t.Error("reader connection accepted a write")
	}
	for _, table := range []string{"portals", "resources", "resource_history", "resource_counts", "cursors", "sync_runs", "sync_run_types"} {
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s missing (%d, %v)", table, n, err)
		}
	}

	// A write creates -wal and -shm; all three files are private.
	addPortal(t, s, "p")
	if runtime.GOOS != "windows" {
		assertMode(t, dir, 0o700)
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			assertMode(t, p, 0o600)
		}
	}

	// Reopening applies nothing new and keeps the data.
	s2 := openAt(t, path, Options{})
	if v2, err := s2.SchemaVersion(ctx); err != nil || v2 != v {
		t.Fatalf("reopen: version %d, %v", v2, err)
	}
	var applied int
	if err := s2.r.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil || applied != v {
		t.Fatalf("schema_migrations rows = %d, %v; want %d", applied, err, v)
	}
	if _, err := s2.GetPortal(ctx, "p"); err != nil {
		t.Fatalf("portal lost on reopen: %v", err)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s mode = %o, want %o", filepath.Base(path), got, want)
	}
}

func TestOpenTightensWideFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix file modes on windows")
	}
	path := filepath.Join(t.TempDir(), "onerecord.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openAt(t, path, Options{})
	assertMode(t, path, 0o600)
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "onerecord.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, '0999_future.sql', 'x')`); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err = Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("open newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	var se *SchemaError
	if !errors.As(err, &se) || se.Found != 999 || se.Known != LatestSchemaVersion() || se.Hint() == "" {
		t.Fatalf("schema error detail = %#v", se)
	}
	if !strings.Contains(err.Error(), "999") {
		t.Errorf("message does not name the version: %v", err)
	}
}

func TestOpenRejectsNonDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "onerecord.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(context.Background(), path); err == nil {
		s.Close()
		t.Fatal("opened a file that is not a database")
	}
}
