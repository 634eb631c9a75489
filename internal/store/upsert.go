package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// Statement sizes for the batched paths: lookups ask for up to lookupChunk
// ids at once and inserts write up to insertChunk rows per statement, which
// saves most of the per-statement cost of the driver.
const (
	lookupChunk = 200 // a search page: most lookups use the kept statement
	insertChunk = 200
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
	store   *Store
	ctx     context.Context
	tx      *sql.Tx
	portal  string
	fetched any

	// lookupAll looks every type up, even one whose counters say the store
	// holds none of it (the retry after a unique-key conflict).
	lookupAll bool
	// empty are the types this batch found without a row: once the batch
	// commits, they are fresh (see Store.fresh).
	empty []string

	existing map[rkey]stored
	pending  []queued   // rows to insert
	args     []any      // arguments of one insert statement
	rs       []Resource // the batch
	// hexes holds the hex content hashes the batch computes, 64 bytes
	// each, so that a hash is not an allocation of its own (made when the
	// first one is needed: a sync hashes before it upserts).
	hexes []byte
	// written counts the bytes of content this transaction writes.
	written int64
	stmts   map[string]*sql.Stmt
	deltas  map[string]countDelta
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

// Statements every batch runs, prepared once per Store (see Store.prepared)
// instead of once per transaction: compiling an insert of hundreds of
// parameters for every page cost a tenth of the store's time.
var (
	insertFull     = insertSQL(insertChunk, false)
	insertFullType = insertSQL(insertChunk, true)
	lookupFull     = lookupQuery(lookupChunk)
	countsOne      = `SELECT live + deleted FROM resource_counts WHERE portal = ? AND type = ?`
	keptQueries    = []string{insertFull, insertFullType, lookupFull, countsOne, applyCountsQuery, portalExistsQuery}
)

// queued is a row waiting to be inserted.
type queued struct {
	r    *Resource
	hash string
}

func lookupQuery(n int) string {
	return `SELECT id, rowid, hash, deleted FROM resources
				WHERE portal = ? AND type = ? AND id IN (` + placeholders(n) + `)`
}

// insertQuery inserts n rows. The portal and fetch time, the same for every
// row of a batch, and the type when oneType, are bound once per statement
// instead of once per row: the driver binds, and afterwards clears, every
// parameter one call at a time.
func insertQuery(n int, oneType bool) string {
	switch {
	case n == insertChunk && oneType:
		return insertFullType
	case n == insertChunk:
		return insertFull
	}
	return insertSQL(n, oneType)
}

func insertSQL(n int, oneType bool) string {
	if oneType {
		return `INSERT INTO resources
			(portal, type, id, version_id, last_updated, hash, fetched_at, raw)
			SELECT c.p, c.t, v.column1, v.column2, v.column3, v.column4, c.f, v.column5
			FROM (SELECT ? AS p, ? AS t, ? AS f) AS c, (VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?),", n), ",") + `) AS v`
	}
	return `INSERT INTO resources
			(portal, type, id, version_id, last_updated, hash, fetched_at, raw)
			SELECT c.p, v.column1, v.column2, v.column3, v.column4, v.column5, c.f, v.column6
			FROM (SELECT ? AS p, ? AS f) AS c, (VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?),", n), ",") + `) AS v`
}

// kept is stmt for one of keptQueries: the Store's statement bound to the
// transaction (the writer has one connection, so it is the same one).
func (u *upsert) kept(q string) (*sql.Stmt, error) {
	if st, ok := u.stmts[q]; ok {
		return st, nil
	}
	ps := u.store.prepared(q)
	if ps == nil {
		return u.stmt(q)
	}
	st := u.tx.StmtContext(u.ctx, ps)
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
// A type the store holds no row of (its maintained counters are zero, as
// for every type in a first sync) has nothing to look up: its resources are
// all new, and a repeat within the batch is found in u.existing. Nor has a
// type this Store has written every row of since it found it empty (its
// later pages in a first sync): a repeat from an earlier batch fails the
// insert on the unique key and the batch is redone with lookups.
func (u *upsert) load(rs []Resource) error {
	for _, t := range batchTypes(rs) {
		if !u.lookupAll {
			if u.store.isFresh(u.portal, t) {
				continue
			}
			held, err := u.holds(t)
			if err != nil {
				return err
			}
			if !held {
				u.empty = append(u.empty, t)
				continue
			}
		}
		var ids []any
		for i := range rs {
			if rs[i].Type == t {
				ids = append(ids, rs[i].ID)
			}
		}
		for start := 0; start < len(ids); start += lookupChunk {
			chunk := ids[start:min(start+lookupChunk, len(ids))]
			// A short chunk is padded with its first id (a repeat in an IN
			// list changes nothing) so that it runs the kept statement
			// instead of compiling one of its own size.
			st, err := u.kept(lookupFull)
			if err != nil {
				return err
			}
			args := make([]any, 0, 2+lookupChunk)
			args = append(append(args, u.portal, t), chunk...)
			for len(args) < 2+lookupChunk {
				args = append(args, chunk[0])
			}
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

// portalExists is portalExists with the kept statement.
func (u *upsert) portalExists() error {
	st, err := u.kept(portalExistsQuery)
	if err != nil {
		return err
	}
	return portalFound(u.portal, st.QueryRowContext(u.ctx, u.portal))
}

// applyCounts is applyCounts with the kept statement.
func (u *upsert) applyCounts() error {
	st, err := u.kept(applyCountsQuery)
	if err != nil {
		return err
	}
	for typ, d := range u.deltas {
		if d.live == 0 && d.deleted == 0 {
			continue
		}
		if _, err := st.ExecContext(u.ctx, u.portal, typ, d.live, d.deleted); err != nil {
			return err
		}
	}
	return nil
}

// holds reports whether the store has any row (live or deleted) of type t
// for the portal, from the counters every write keeps in step with the rows.
func (u *upsert) holds(t string) (bool, error) {
	st, err := u.kept(countsOne)
	if err != nil {
		return false, err
	}
	var n int64
	err = st.QueryRowContext(u.ctx, u.portal, t).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return n != 0, err
}

// flush writes the queued inserts. The queue keeps its array for the next
// rows.
func (u *upsert) flush() error {
	for done := 0; done < len(u.pending); {
		rows := u.pending[done:min(done+insertChunk, len(u.pending))]
		oneType := true
		for i := range rows {
			oneType = oneType && rows[i].r.Type == rows[0].r.Type
		}
		args := append(u.args[:0], u.portal)
		if oneType {
			args = append(args, rows[0].r.Type)
		}
		args = append(args, u.fetched)
		for i := range rows {
			r := rows[i].r
			if !oneType {
				args = append(args, r.Type)
			}
			args = append(args, r.ID, r.VersionID, r.LastUpdated, rows[i].hash, resourceText(r.Raw))
		}
		st, err := u.kept(insertQuery(len(rows), oneType))
		if err != nil {
			return err
		}
		_, err = st.ExecContext(u.ctx, args...)
		clear(args)
		u.args = args[:0]
		if err != nil {
			return err
		}
		done += len(rows)
	}
	clear(u.pending)
	u.pending = u.pending[:0]
	return nil
}

// hash is the hex SHA-256 of the i-th resource's content, kept in u.hexes,
// or the one the caller computed (Resource.Hash).
func (u *upsert) hash(i int, r *Resource) string {
	if len(r.Hash) == hexHash {
		return r.Hash
	}
	if u.hexes == nil {
		u.hexes = make([]byte, len(u.rs)*hexHash)
	}
	sum := sha256.Sum256(r.Raw)
	h := u.hexes[i*hexHash : (i+1)*hexHash]
	hex.Encode(h, sum[:])
	return unsafe.String(unsafe.SliceData(h), hexHash)
}

const hexHash = 2 * sha256.Size

// HashOf is the content hash the store keeps for a resource: the hex
// SHA-256 of its JSON as sent.
func HashOf(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// resourceText is raw as a string without a copy: it is bound as TEXT (the
// driver copies it into SQLite) before UpsertResources returns, and nothing
// writes to a resource's Raw meanwhile. Copying every resource once more
// only made garbage (100 MB at 100,000 resources).
func resourceText(raw []byte) string {
	return unsafe.String(unsafe.SliceData(raw), len(raw))
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

// one applies the i-th resource.
func (u *upsert) one(i int, r *Resource, c *UpsertCounts) error {
	hash := u.hash(i, r)
	k := rkey{r.Type, r.ID}
	s, ok := u.existing[k]
	if !ok {
		u.written += int64(len(r.Raw))
		u.pending = append(u.pending, queued{r, hash})
		u.existing[k] = stored{hash: hash}
		c.New++
		u.delta(r.Type, 1, 0)
		if len(u.pending) >= insertChunk {
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
	u.written += int64(len(r.Raw))
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
	byType, err := s.UpsertByType(ctx, portal, rs, fetchedAt)
	for _, tc := range byType {
		c.New += tc.New
		c.Changed += tc.Changed
		c.Unchanged += tc.Unchanged
	}
	return c, err
}

// UpsertByType is UpsertResources with the counts given per resource type.
// A batch of several types is one transaction, which is cheaper than one
// per type: every commit writes the last pages of the table and its index
// again.
func (s *Store) UpsertByType(ctx context.Context, portal string, rs []Resource, fetchedAt time.Time) (map[string]UpsertCounts, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	for i := range rs {
		if rs[i].Type == "" || rs[i].ID == "" {
			return nil, fmt.Errorf("store: upsert: resource %d has an empty type or id", i)
		}
		if len(rs[i].Raw) == 0 {
			return nil, fmt.Errorf("store: upsert: %s/%s has no content", rs[i].Type, rs[i].ID)
		}
	}
	if fetchedAt.IsZero() {
		fetchedAt = time.Now()
	}
	c, err := s.upsert(ctx, portal, rs, fetchedAt, false)
	if err != nil && isConstraint(err) {
		// The first-sync shortcut trusted resource_counts or s.fresh to say
		// a type has no row of an id; a conflict means one exists (counters
		// drifted, a repeat across batches, another writer). The
		// transaction was rolled back: do it again, looking every id up,
		// and look these types up from now on.
		s.setFresh(portal, batchTypes(rs), false)
		c, err = s.upsert(ctx, portal, rs, fetchedAt, true)
	}
	if err != nil {
		return nil, s.wrap("upsert", err)
	}
	return c, nil
}

// upsert is one attempt of UpsertResources in one transaction; errors are
// the driver's, unwrapped.
func (s *Store) upsert(ctx context.Context, portal string, rs []Resource, fetchedAt time.Time, lookupAll bool) (map[string]UpsertCounts, error) {
	var c map[string]UpsertCounts
	// Before the transaction: preparing on the writer needs its only
	// connection, which the transaction then holds.
	if err := s.prepareKept(ctx); err != nil {
		return c, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return c, err
	}
	defer tx.Rollback()
	u := &upsert{
		store: s, ctx: ctx, tx: tx, portal: portal, fetched: fmtTime(fetchedAt), lookupAll: lookupAll,
		existing: make(map[rkey]stored, len(rs)),
		pending:  make([]queued, 0, min(len(rs), insertChunk)),
		rs:       rs,
		stmts:    map[string]*sql.Stmt{},
		deltas:   map[string]countDelta{},
	}
	defer u.close()
	if err := u.portalExists(); err != nil {
		return c, err
	}
	if err := u.load(rs); err != nil {
		return nil, err
	}
	counts := map[string]*UpsertCounts{}
	for i := range rs {
		tc := counts[rs[i].Type]
		if tc == nil {
			tc = &UpsertCounts{}
			counts[rs[i].Type] = tc
		}
		if err := u.one(i, &rs[i], tc); err != nil {
			return nil, err
		}
	}
	if err := u.flush(); err != nil {
		return nil, err
	}
	if err := u.applyCounts(); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	c = make(map[string]UpsertCounts, len(counts))
	for t, tc := range counts {
		c[t] = *tc
	}
	s.setFresh(portal, u.empty, true)
	if u.written > 0 {
		if ck := s.checkpointerFor(ctx); ck != nil {
			ck.committed(u.written)
		}
	}
	return c, nil
}

// batchTypes lists the types in rs.
func batchTypes(rs []Resource) []string {
	var ts []string
	for i := range rs {
		if !slices.Contains(ts, rs[i].Type) {
			ts = append(ts, rs[i].Type)
		}
	}
	return ts
}
