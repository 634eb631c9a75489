package benchkit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/onerecord/onerecord/internal/store"
)

// BulkLoad creates the store at path with `portals` connected portals and
// `total` stored resources spread evenly over them (about 1 KB of JSON each,
// Observations mostly), with the resource counters the store maintains. It
// writes straight into SQLite (a recursive CTE per portal) because going
// through UpsertResources would take minutes at a million resources; the
// rows have the shape the store writes. capability, when given, is cached
// on every portal as a real sync would leave it.
func BulkLoad(ctx context.Context, path string, portals, total int, capability json.RawMessage) error {
	st, err := store.Open(ctx, path)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	for i := range portals {
		c := store.Connection{
			State: store.StateConnected, ConnectedAt: now.Add(-30 * 24 * time.Hour),
			PatientID: fmt.Sprintf("p%d", i), PatientName: "Bench Patient", PatientBirthDate: "1970-01-01",
			GrantedScope:    "openid fhirUser offline_access launch/patient patient/*.rs",
			HasRefreshToken: true, AccessExpiresAt: now.Add(time.Hour),
			LastSyncAt: now.Add(-time.Hour), LastSyncStatus: "ok",
		}
		switch i % 5 {
		case 3:
			c.GrantExpiresAt = now.Add(5 * 24 * time.Hour) // expiring
		case 4:
			c.State, c.Reason, c.DisconnectedAt = store.StateDisconnected, "refresh rejected", now.Add(-24*time.Hour)
		}
		p := store.Portal{
			Name: fmt.Sprintf("portal-%02d", i), DisplayName: fmt.Sprintf("Bench portal %d", i),
			FHIRBase: fmt.Sprintf("https://fhir%d.example.org/r4", i), ClientID: "bench", Source: "user",
			Capability: capability, Conn: c,
		}
		if err := st.PutPortal(ctx, p); err != nil {
			st.Close()
			return err
		}
	}
	if err := st.Close(); err != nil {
		return err
	}

	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(OFF)")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	fetched := now.Add(-time.Hour).Format("2006-01-02T15:04:05.000000000Z")
	for i := range portals {
		name := fmt.Sprintf("portal-%02d", i)
		n := total / portals
		if i < total%portals {
			n++
		}
		if n == 0 {
			continue
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2),
			t(i, typ) AS (SELECT i, CASE i % 10
				WHEN 6 THEN 'Condition' WHEN 7 THEN 'MedicationRequest' WHEN 8 THEN 'Encounter'
				WHEN 9 THEN 'DiagnosticReport' ELSE 'Observation' END FROM n)
			INSERT INTO resources (portal, type, id, version_id, last_updated, hash, fetched_at, raw)
			SELECT ?1, typ, 'r' || i, '1', '2025-06-01T00:00:00Z', lower(hex(randomblob(32))), ?3,
				printf('{"resourceType":"%s","id":"r%d","meta":{"versionId":"1","lastUpdated":"2025-06-01T00:00:00Z"},"status":"final","note":"%s"}',
					typ, i, hex(randomblob(450)))
			FROM t`, name, n, fetched)
		if err == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO resource_counts (portal, type, live, deleted)
				SELECT portal, type, count(*), 0 FROM resources WHERE portal = ? GROUP BY type`, name)
		}
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("benchkit: bulk load %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	_, err = db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}
