package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

func pageSize(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.r.QueryRowContext(context.Background(), `PRAGMA page_size`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A new store gets the large page size, still in WAL mode with the
// connection settings Open asks for (the page size must be set before WAL,
// which the driver's order of DSN settings decides).
func TestNewStorePageSize(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	if got := pageSize(t, s); got != newPageSize {
		t.Fatalf("page_size = %d, want %d", got, newPageSize)
	}
	for _, db := range []struct {
		name string
		q    queryer
	}{{"writer", s.w}, {"reader", s.r}} {
		var mode string
		var sync int
		if err := db.q.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%s journal_mode = %q, %v; want wal", db.name, mode, err)
		}
		if err := db.q.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 1 {
			t.Errorf("%s synchronous = %d, %v; want 1 (NORMAL)", db.name, sync, err)
		}
	}
}

// A store created with SQLite's default 4 KB pages (every store written
// before the page size changed) keeps them and keeps working: writes,
// changes with history, counters.
func TestExistingStoreKeepsPageSize(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "onerecord.db")
	// The file as the previous Open made it: 4 KB pages, WAL, schema 1.
	old, err := sql.Open("sqlite", path+"?_pragma=page_size(4096)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	old.SetMaxOpenConns(1)
	if _, err := old.ExecContext(ctx, `CREATE TABLE keep (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := old.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&n); err != nil || n != 4096 {
		t.Fatalf("old store page_size = %d, %v", n, err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	for round := range 2 {
		s := openAt(t, path, Options{})
		if got := pageSize(t, s); got != 4096 {
			t.Fatalf("round %d: page_size = %d, want the old store's 4096", round, got)
		}
		if round == 0 {
			addPortal(t, s, "p")
		}
		var rs []Resource
		for i := range 600 {
			rs = append(rs, res("Observation", fmt.Sprint(i), fmt.Sprint(round)))
		}
		c, err := s.UpsertResources(ctx, "p", rs, t0)
		if err != nil {
			t.Fatal(err)
		}
		want := UpsertCounts{New: 600}
		if round == 1 {
			want = UpsertCounts{Changed: 600}
		}
		if c != want {
			t.Fatalf("round %d: counts %+v, want %+v", round, c, want)
		}
		verify(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := openAt(t, path, Options{})
	if h, err := s.History(ctx, "p", "Observation", "7"); err != nil || len(h) != 1 {
		t.Fatalf("history: %d versions, %v", len(h), err)
	}
}
