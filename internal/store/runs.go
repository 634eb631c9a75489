package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Run statuses.
const (
	RunRunning     = "running"
	RunOK          = "ok"
	RunPartial     = "partial"
	RunFailed      = "failed"
	RunReconnect   = "reconnect"
	RunInterrupted = "interrupted"
)

// BeginRun records the start of a sync run (status "running"). The portal
// must exist (ErrNotFound).
func (s *Store) BeginRun(ctx context.Context, portal string, started time.Time) (int64, error) {
	if started.IsZero() {
		started = time.Now()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.wrap("begin run", err)
	}
	defer tx.Rollback()
	if err := portalExists(ctx, tx, portal); err != nil {
		return 0, s.wrap("begin run", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO sync_runs (portal, started_at, status) VALUES (?, ?, ?)`,
		portal, fmtTime(started), RunRunning)
	if err != nil {
		return 0, s.wrap("begin run", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, s.wrap("begin run", err)
	}
	return id, s.wrap("begin run", tx.Commit())
}

// CloseStaleRuns marks the portal's runs still recorded as running as
// interrupted, finished at finished, and returns how many it marked. Only a
// caller that knows no sync of this home is running (it holds the sync lock)
// may call it: such runs were left by a process that was killed.
func (s *Store) CloseStaleRuns(ctx context.Context, portal string, finished time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE sync_runs SET status = ?, finished_at = ? WHERE portal = ? AND status = ?`,
		RunInterrupted, fmtTime(finished), portal, RunRunning)
	if err != nil {
		return 0, s.wrap("close stale runs", err)
	}
	n, err := res.RowsAffected()
	return int(n), s.wrap("close stale runs", err)
}

// FinishRun records a run's outcome and per-type results (replacing any
// recorded before for the same run).
func (s *Store) FinishRun(ctx context.Context, id int64, status string, finished time.Time, types []TypeResult) error {
	if finished.IsZero() {
		finished = time.Now()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("finish run", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE sync_runs SET status = ?, finished_at = ? WHERE id = ?`,
		status, fmtTime(finished), id)
	if err != nil {
		return s.wrap("finish run", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.wrap("finish run", err)
	} else if n == 0 {
		return fmt.Errorf("store: sync run %d: %w", id, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sync_run_types WHERE run_id = ?`, id); err != nil {
		return s.wrap("finish run", err)
	}
	for _, t := range types {
		_, err := tx.ExecContext(ctx, `INSERT INTO sync_run_types
			(run_id, type, status, error, new, changed, unchanged, deleted, requests)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, type) DO UPDATE SET status = excluded.status, error = excluded.error,
				new = excluded.new, changed = excluded.changed, unchanged = excluded.unchanged,
				deleted = excluded.deleted, requests = excluded.requests`,
			id, t.Type, t.Status, t.Error, t.New, t.Changed, t.Unchanged, t.Deleted, t.Requests)
		if err != nil {
			return s.wrap("finish run", err)
		}
	}
	return s.wrap("finish run", tx.Commit())
}

// LastRun returns the newest run of a portal (ErrNotFound when none), with
// its per-type results sorted by type.
func (s *Store) LastRun(ctx context.Context, portal string) (Run, error) {
	var (
		r                 Run
		started, finished sql.NullString
	)
	err := s.r.QueryRowContext(ctx, `SELECT id, portal, started_at, finished_at, status FROM sync_runs
		WHERE portal = ? ORDER BY id DESC LIMIT 1`, portal).Scan(&r.ID, &r.Portal, &started, &finished, &r.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("store: sync run of portal %q: %w", portal, ErrNotFound)
	}
	if err != nil {
		return Run{}, s.wrap("last run", err)
	}
	var ts timeScanner
	r.StartedAt = ts.t(started)
	r.FinishedAt = ts.t(finished)
	if ts.err != nil {
		return Run{}, s.wrap("last run", ts.err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT type, status, error, new, changed, unchanged, deleted, requests
		FROM sync_run_types WHERE run_id = ? ORDER BY type`, r.ID)
	if err != nil {
		return Run{}, s.wrap("last run", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t TypeResult
		if err := rows.Scan(&t.Type, &t.Status, &t.Error, &t.New, &t.Changed, &t.Unchanged, &t.Deleted, &t.Requests); err != nil {
			return Run{}, s.wrap("last run", err)
		}
		r.Types = append(r.Types, t)
	}
	return r, s.wrap("last run", rows.Err())
}
