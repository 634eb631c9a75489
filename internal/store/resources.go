package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// countDelta is the change to one type's counters within a transaction.
type countDelta struct{ live, deleted int }

// applyCounts adds the deltas to resource_counts inside tx.
func applyCounts(ctx context.Context, tx *sql.Tx, portal string, deltas map[string]countDelta) error {
	for typ, d := range deltas {
		if d.live == 0 && d.deleted == 0 {
			continue
		}
		_, err := tx.ExecContext(ctx, applyCountsQuery, portal, typ, d.live, d.deleted)
		if err != nil {
			return err
		}
	}
	return nil
}

const (
	applyCountsQuery = `INSERT INTO resource_counts (portal, type, live, deleted) VALUES (?, ?, ?, ?)
			ON CONFLICT (portal, type) DO UPDATE SET live = live + excluded.live, deleted = deleted + excluded.deleted`
	portalExistsQuery = `SELECT 1 FROM portals WHERE name = ?`
)

func portalExists(ctx context.Context, tx *sql.Tx, portal string) error {
	return portalFound(portal, tx.QueryRowContext(ctx, portalExistsQuery, portal))
}

// portalFound reads the result of portalExistsQuery.
func portalFound(portal string, row *sql.Row) error {
	var one int
	err := row.Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: portal %q: %w", portal, ErrNotFound)
	}
	return err
}

const resourceColumns = `type, id, version_id, last_updated, hash, fetched_at, deleted, deleted_at, raw`

func scanResource(sc interface{ Scan(...any) error }) (StoredResource, error) {
	var (
		r                  StoredResource
		fetched, deletedAt sql.NullString
		deleted            int
		raw                []byte
	)
	if err := sc.Scan(&r.Type, &r.ID, &r.VersionID, &r.LastUpdated, &r.Hash, &fetched, &deleted, &deletedAt, &raw); err != nil {
		return StoredResource{}, err
	}
	r.Raw = raw
	r.Deleted = deleted != 0
	var ts timeScanner
	r.FetchedAt = ts.t(fetched)
	r.DeletedAt = ts.t(deletedAt)
	return r, ts.err
}

// GetResource returns ErrNotFound when absent. A resource marked deleted is
// returned with Deleted set.
func (s *Store) GetResource(ctx context.Context, portal, typ, id string) (StoredResource, error) {
	r, err := scanResource(s.r.QueryRowContext(ctx, `SELECT `+resourceColumns+` FROM resources
		WHERE portal = ? AND type = ? AND id = ?`, portal, typ, id))
	if errors.Is(err, sql.ErrNoRows) {
		return StoredResource{}, fmt.Errorf("store: %s/%s in portal %q: %w", typ, id, portal, ErrNotFound)
	}
	return r, s.wrap("get resource", err)
}

// History returns previous versions of a resource, oldest first. A resource
// that never changed has none (nil, nil).
func (s *Store) History(ctx context.Context, portal, typ, id string) ([]StoredResource, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+resourceColumns+` FROM resource_history
		WHERE portal = ? AND type = ? AND id = ? ORDER BY seq`, portal, typ, id)
	if err != nil {
		return nil, s.wrap("history", err)
	}
	defer rows.Close()
	var out []StoredResource
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return nil, s.wrap("history", err)
		}
		out = append(out, r)
	}
	return out, s.wrap("history", rows.Err())
}

// MarkDeletedExcept marks every not-deleted resource of typ whose id is not in
// seen as deleted (never removes rows) and returns how many it marked.
func (s *Store) MarkDeletedExcept(ctx context.Context, portal, typ string, seen map[string]bool) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, s.wrap("mark deleted", err)
	}
	defer tx.Rollback()

	// Walk the ids of this type (index order, the raw JSON is not read) and
	// collect the rows to mark; memory grows with the deletions only.
	rows, err := tx.QueryContext(ctx, `SELECT rowid, id FROM resources
		WHERE portal = ? AND type = ? AND deleted = 0`, portal, typ)
	if err != nil {
		return 0, s.wrap("mark deleted", err)
	}
	var gone []int64
	for rows.Next() {
		var (
			rowid int64
			id    string
		)
		if err := rows.Scan(&rowid, &id); err != nil {
			rows.Close()
			return 0, s.wrap("mark deleted", err)
		}
		if !seen[id] {
			gone = append(gone, rowid)
		}
	}
	if err := rows.Close(); err != nil {
		return 0, s.wrap("mark deleted", err)
	}
	if err := rows.Err(); err != nil {
		return 0, s.wrap("mark deleted", err)
	}
	if len(gone) == 0 {
		return 0, nil
	}
	mark, err := tx.PrepareContext(ctx, `UPDATE resources SET deleted = 1, deleted_at = ? WHERE rowid = ?`)
	if err != nil {
		return 0, s.wrap("mark deleted", err)
	}
	defer mark.Close()
	now := fmtTime(time.Now())
	for _, rowid := range gone {
		if _, err := mark.ExecContext(ctx, now, rowid); err != nil {
			return 0, s.wrap("mark deleted", err)
		}
	}
	n := len(gone)
	if err := applyCounts(ctx, tx, portal, map[string]countDelta{typ: {live: -n, deleted: n}}); err != nil {
		return 0, s.wrap("mark deleted", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, s.wrap("mark deleted", err)
	}
	return n, nil
}

// MissingRefs returns the refs that are not stored (or stored as deleted),
// in the order given, without duplicates.
func (s *Store) MissingRefs(ctx context.Context, portal string, refs []Ref) ([]Ref, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return nil, s.wrap("missing refs", err)
	}
	defer conn.Close()
	st, err := conn.PrepareContext(ctx, `SELECT deleted FROM resources WHERE portal = ? AND type = ? AND id = ?`)
	if err != nil {
		return nil, s.wrap("missing refs", err)
	}
	defer st.Close()
	var missing []Ref
	done := make(map[Ref]bool, len(refs))
	for _, ref := range refs {
		if done[ref] {
			continue
		}
		done[ref] = true
		var deleted int
		err := st.QueryRowContext(ctx, portal, ref.Type, ref.ID).Scan(&deleted)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			missing = append(missing, ref)
		case err != nil:
			return nil, s.wrap("missing refs", err)
		case deleted != 0:
			missing = append(missing, ref)
		}
	}
	return missing, nil
}

// CountResources returns not-deleted resources of a portal per type, from
// the maintained counters. Types with none are left out.
func (s *Store) CountResources(ctx context.Context, portal string) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT type, live FROM resource_counts WHERE portal = ? AND live > 0`, portal)
	if err != nil {
		return nil, s.wrap("count resources", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			typ string
			n   int
		)
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, s.wrap("count resources", err)
		}
		out[typ] = n
	}
	return out, s.wrap("count resources", rows.Err())
}

// ResourceTotals returns not-deleted resources per portal, from maintained
// counters (fast at millions of rows). Every stored portal has an entry,
// 0 when it has no resources.
func (s *Store) ResourceTotals(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT p.name, coalesce(sum(c.live), 0)
		FROM portals p LEFT JOIN resource_counts c ON c.portal = p.name GROUP BY p.name`)
	if err != nil {
		return nil, s.wrap("resource totals", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			name string
			n    int
		)
		if err := rows.Scan(&name, &n); err != nil {
			return nil, s.wrap("resource totals", err)
		}
		out[name] = n
	}
	return out, s.wrap("resource totals", rows.Err())
}
