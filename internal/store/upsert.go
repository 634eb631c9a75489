package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Statement sizes for the batched paths: lookups ask for up to lookupChunk
// ids at once and inserts write up to insertChunk rows per statement, which
// saves most of the per-statement cost of the driver.
const (
	lookupChunk = 250
	insertChunk = 50
	insertArgs  = 8
)

// stored is what an upsert needs to know about an existing row.
type stored struct {
	rowid   int64 // 0 while the row is queued for insert in this batch
	hash    string
	deleted bool
}

type rkey struct{ typ, id string }

// upsert is the state of one UpsertResources transaction.
type upsert struct {
	ctx     context.Context
	tx      *sql.Tx
	portal  string
	fetched any

	existing map[rkey]stored
	pending  []any // queued insert arguments, insertArgs per row
	stmts    map[string]*sql.Stmt
	deltas   map[string]countDelta
}

// stmt prepares q once per transaction.
func (u *upsert) stmt(q string) (*sql.Stmt, error) {
	if st, ok := u.stmts[q]; ok {
		return st, nil
	}
	st, err := u.tx.PrepareContext(u.ctx, q)
	if err != nil {
		return nil, err
	}
	u.stmts[q] = st
	return st, nil
}

func (u *upsert) close() {
	for _, st := range u.stmts {
		st.Close()
	}
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// load reads the stored state of every resource in rs, a type at a time.
func (u *upsert) load(rs []Resource) error {
	byType := map[string][]any{}
	var order []string
	for i := range rs {
		t := rs[i].Type
		if _, ok := byType[t]; !ok {
			order = append(order, t)
		}
		byType[t] = append(byType[t], rs[i].ID)
	}
	for _, t := range order {
		ids := byType[t]
		for start := 0; start < len(ids); start += lookupChunk {
			chunk := ids[start:min(start+lookupChunk, len(ids))]
			st, err := u.stmt(`SELECT id, rowid, hash, deleted FROM resources
				WHERE portal = ? AND type = ? AND id IN (` + placeholders(len(chunk)) + `)`)
			if err != nil {
				return err
			}
			args := append([]any{u.portal, t}, chunk...)
			rows, err := st.QueryContext(u.ctx, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var (
					id      string
					s       stored
					deleted int
				)
				if err := rows.Scan(&id, &s.rowid, &s.hash, &deleted); err != nil {
					rows.Close()
					return err
				}
				s.deleted = deleted != 0
				u.existing[rkey{t, id}] = s
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes the queued inserts and learns their rowids.
func (u *upsert) flush() error {
	for len(u.pending) > 0 {
		n := min(len(u.pending)/insertArgs, insertChunk)
		st, err := u.stmt(`INSERT INTO resources
			(portal, type, id, version_id, last_updated, hash, fetched_at, raw) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?),", n), ","))
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(u.ctx, u.pending[:n*insertArgs]...); err != nil {
			return err
		}
		u.pending = u.pending[n*insertArgs:]
	}
	return nil
}

// rowid finds a row inserted earlier in this batch. Only a resource repeated
// within one batch needs it, which is rare, so it is looked up one by one.
func (u *upsert) rowid(k rkey) (int64, error) {
	st, err := u.stmt(`SELECT rowid FROM resources WHERE portal = ? AND type = ? AND id = ?`)
	if err != nil {
		return 0, err
	}
	var id int64
	err = st.QueryRowContext(u.ctx, u.portal, k.typ, k.id).Scan(&id)
	return id, err
}

func (u *upsert) delta(typ string, live, deleted int) {
	d := u.deltas[typ]
	d.live += live
	d.deleted += deleted
	u.deltas[typ] = d
}

// one applies a single resource.
func (u *upsert) one(r *Resource, c *UpsertCounts) error {
	sum := sha256.Sum256(r.Raw)
	hash := hex.EncodeToString(sum[:])
	k := rkey{r.Type, r.ID}
	s, ok := u.existing[k]
	if !ok {
		u.pending = append(u.pending, u.portal, r.Type, r.ID, r.VersionID, r.LastUpdated, hash, u.fetched, string(r.Raw))
		u.existing[k] = stored{hash: hash}
		c.New++
		u.delta(r.Type, 1, 0)
		if len(u.pending) >= insertChunk*insertArgs {
			return u.flush()
		}
		return nil
	}
	if s.hash == hash && !s.deleted {
		c.Unchanged++
		return nil
	}
	if s.rowid == 0 {
		// Inserted earlier in this batch: write the queue, then find it.
		if err := u.flush(); err != nil {
			return err
		}
		id, err := u.rowid(k)
		if err != nil {
			return err
		}
		s.rowid = id
	}
	if s.hash == hash {
		st, err := u.stmt(`UPDATE resources SET deleted = 0, deleted_at = NULL, fetched_at = ? WHERE rowid = ?`)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(u.ctx, u.fetched, s.rowid); err != nil {
			return err
		}
	} else {
		hist, err := u.stmt(`INSERT INTO resource_history
			(portal, type, id, version_id, last_updated, hash, fetched_at, deleted, deleted_at, replaced_at, raw)
			SELECT portal, type, id, version_id, last_updated, hash, fetched_at, deleted, deleted_at, ?, raw
			FROM resources WHERE rowid = ?`)
		if err != nil {
			return err
		}
		if _, err := hist.ExecContext(u.ctx, u.fetched, s.rowid); err != nil {
			return err
		}
		upd, err := u.stmt(`UPDATE resources SET version_id = ?, last_updated = ?, hash = ?, fetched_at = ?,
			deleted = 0, deleted_at = NULL, raw = ? WHERE rowid = ?`)
		if err != nil {
			return err
		}
		if _, err := upd.ExecContext(u.ctx, r.VersionID, r.LastUpdated, hash, u.fetched, string(r.Raw), s.rowid); err != nil {
			return err
		}
	}
	c.Changed++
	if s.deleted {
		u.delta(r.Type, 1, -1)
	}
	u.existing[k] = stored{rowid: s.rowid, hash: hash}
	return nil
}

// UpsertResources stores a batch in one transaction. A resource whose content
// hash differs from the stored one is "changed": the old version goes to
// history first. A deleted resource seen again is undeleted (counted changed).
// An unchanged resource is not written at all (its fetched_at stays the time
// that content was first stored). The portal must exist (ErrNotFound).
// Within a batch resources apply in order, so a repeated id counts as if it
// came in a later batch.
func (s *Store) UpsertResources(ctx context.Context, portal string, rs []Resource, fetchedAt time.Time) (UpsertCounts, error) {
	var c UpsertCounts
	if len(rs) == 0 {
		return c, nil
	}
	for i := range rs {
		if rs[i].Type == "" || rs[i].ID == "" {
			return c, fmt.Errorf("store: upsert: resource %d has an empty type or id", i)
		}
		if len(rs[i].Raw) == 0 {
			return c, fmt.Errorf("store: upsert: %s/%s has no content", rs[i].Type, rs[i].ID)
		}
	}
	if fetchedAt.IsZero() {
		fetchedAt = time.Now()
	}

	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return c, s.wrap("upsert", err)
	}
	defer tx.Rollback()
	if err := portalExists(ctx, tx, portal); err != nil {
		return c, s.wrap("upsert", err)
	}
	u := &upsert{
		ctx: ctx, tx: tx, portal: portal, fetched: fmtTime(fetchedAt),
		existing: make(map[rkey]stored, len(rs)),
		stmts:    map[string]*sql.Stmt{},
		deltas:   map[string]countDelta{},
	}
	defer u.close()
	if err := u.load(rs); err != nil {
		return UpsertCounts{}, s.wrap("upsert", err)
	}
	for i := range rs {
		if err := u.one(&rs[i], &c); err != nil {
			return UpsertCounts{}, s.wrap("upsert", err)
		}
	}
	if err := u.flush(); err != nil {
		return UpsertCounts{}, s.wrap("upsert", err)
	}
	if err := applyCounts(ctx, tx, portal, u.deltas); err != nil {
		return UpsertCounts{}, s.wrap("upsert", err)
	}
	if err := tx.Commit(); err != nil {
		return UpsertCounts{}, s.wrap("upsert", err)
	}
	return c, nil
}
