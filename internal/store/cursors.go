package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// GetCursor returns ErrNotFound when the search has no cursor yet.
func (s *Store) GetCursor(ctx context.Context, portal, key string) (Cursor, error) {
	var (
		c         Cursor
		complete  int
		updatedAt sql.NullString
	)
	err := s.r.QueryRowContext(ctx, `SELECT key, last_updated, complete, updated_at FROM cursors
		WHERE portal = ? AND key = ?`, portal, key).Scan(&c.Key, &c.LastUpdated, &complete, &updatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Cursor{}, fmt.Errorf("store: cursor %q of portal %q: %w", key, portal, ErrNotFound)
	}
	if err != nil {
		return Cursor{}, s.wrap("get cursor", err)
	}
	c.Complete = complete != 0
	c.UpdatedAt, err = parseTime(updatedAt)
	return c, s.wrap("get cursor", err)
}

// SetCursor stores a search's cursor. A zero UpdatedAt means now. The portal
// must exist (ErrNotFound).
func (s *Store) SetCursor(ctx context.Context, portal string, c Cursor) error {
	return s.SetCursors(ctx, portal, []Cursor{c})
}

// SetCursors stores several cursors of a portal in one transaction (all or
// none), as SetCursor does each.
func (s *Store) SetCursors(ctx context.Context, portal string, cs []Cursor) error {
	if len(cs) == 0 {
		return nil
	}
	for _, c := range cs {
		if c.Key == "" {
			return errors.New("store: set cursor: empty key")
		}
	}
	now := time.Now()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("set cursor", err)
	}
	defer tx.Rollback()
	if err := portalExists(ctx, tx, portal); err != nil {
		return s.wrap("set cursor", err)
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO cursors (portal, key, last_updated, complete, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (portal, key) DO UPDATE SET last_updated = excluded.last_updated,
			complete = excluded.complete, updated_at = excluded.updated_at`)
	if err != nil {
		return s.wrap("set cursor", err)
	}
	defer st.Close()
	for _, c := range cs {
		if c.UpdatedAt.IsZero() {
			c.UpdatedAt = now
		}
		if _, err := st.ExecContext(ctx, portal, c.Key, c.LastUpdated, boolInt(c.Complete), fmtTime(c.UpdatedAt)); err != nil {
			return s.wrap("set cursor", err)
		}
	}
	return s.wrap("set cursor", tx.Commit())
}

// ListCursors returns every cursor of a portal sorted by key.
func (s *Store) ListCursors(ctx context.Context, portal string) ([]Cursor, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key, last_updated, complete, updated_at FROM cursors
		WHERE portal = ? ORDER BY key`, portal)
	if err != nil {
		return nil, s.wrap("list cursors", err)
	}
	defer rows.Close()
	var out []Cursor
	for rows.Next() {
		var (
			c         Cursor
			complete  int
			updatedAt sql.NullString
		)
		if err := rows.Scan(&c.Key, &c.LastUpdated, &complete, &updatedAt); err != nil {
			return nil, s.wrap("list cursors", err)
		}
		c.Complete = complete != 0
		if c.UpdatedAt, err = parseTime(updatedAt); err != nil {
			return nil, s.wrap("list cursors", err)
		}
		out = append(out, c)
	}
	return out, s.wrap("list cursors", rows.Err())
}
