package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

const portalColumns = `name, display_name, fhir_base, client_id, scope, redirect_port,
	confidential, source, brand_url, smart_config, capability,
	conn_state, conn_reason, connected_at, disconnected_at, patient_id,
	patient_name, patient_birth_date, granted_scope, has_refresh_token,
	access_expires_at, grant_expires_at, last_sync_at, last_sync_status`

func scanPortal(sc interface{ Scan(...any) error }) (Portal, error) {
	var (
		p                                                Portal
		smartCfg, capability                             sql.NullString
		connectedAt, disconnectedAt, accessExp, grantExp sql.NullString
		lastSync                                         sql.NullString
		confidential, hasRefresh                         int
	)
	err := sc.Scan(&p.Name, &p.DisplayName, &p.FHIRBase, &p.ClientID, &p.Scope, &p.RedirectPort,
		&confidential, &p.Source, &p.BrandURL, &smartCfg, &capability,
		&p.Conn.State, &p.Conn.Reason, &connectedAt, &disconnectedAt, &p.Conn.PatientID,
		&p.Conn.PatientName, &p.Conn.PatientBirthDate, &p.Conn.GrantedScope, &hasRefresh,
		&accessExp, &grantExp, &lastSync, &p.Conn.LastSyncStatus)
	if err != nil {
		return Portal{}, err
	}
	p.Confidential = confidential != 0
	p.Conn.HasRefreshToken = hasRefresh != 0
	if smartCfg.Valid {
		p.SMARTConfig = json.RawMessage(smartCfg.String)
	}
	if capability.Valid {
		p.Capability = json.RawMessage(capability.String)
	}
	var ts timeScanner
	p.Conn.ConnectedAt = ts.t(connectedAt)
	p.Conn.DisconnectedAt = ts.t(disconnectedAt)
	p.Conn.AccessExpiresAt = ts.t(accessExp)
	p.Conn.GrantExpiresAt = ts.t(grantExp)
	p.Conn.LastSyncAt = ts.t(lastSync)
	return p, ts.err
}

// rawText stores nil/empty JSON as NULL.
func rawText(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

// PutPortal inserts or replaces a portal's directory part; it keeps the stored
// Connection unless p.Conn.State is set. Cached discovery (SMARTConfig,
// Capability) is replaced only when p carries it.
func (s *Store) PutPortal(ctx context.Context, p Portal) error {
	if p.Name == "" {
		return errors.New("store: put portal: empty name")
	}
	now := fmtTime(time.Now())
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("put portal", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `
		INSERT INTO portals (name, display_name, fhir_base, client_id, scope, redirect_port,
			confidential, source, brand_url, smart_config, capability, discovered_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? IS NULL AND ? IS NULL THEN NULL ELSE ? END, ?, ?)
		ON CONFLICT (name) DO UPDATE SET
			display_name = excluded.display_name,
			fhir_base = excluded.fhir_base,
			client_id = excluded.client_id,
			scope = excluded.scope,
			redirect_port = excluded.redirect_port,
			confidential = excluded.confidential,
			source = excluded.source,
			brand_url = excluded.brand_url,
			smart_config = coalesce(excluded.smart_config, smart_config),
			capability = coalesce(excluded.capability, capability),
			discovered_at = coalesce(excluded.discovered_at, discovered_at),
			updated_at = excluded.updated_at`,
		p.Name, p.DisplayName, p.FHIRBase, p.ClientID, p.Scope, p.RedirectPort,
		boolInt(p.Confidential), p.Source, p.BrandURL, rawText(p.SMARTConfig), rawText(p.Capability),
		rawText(p.SMARTConfig), rawText(p.Capability), now, now, now)
	if err != nil {
		return s.wrap("put portal", err)
	}
	if p.Conn.State != "" {
		if err := setConnection(ctx, tx, p.Name, p.Conn); err != nil {
			return s.wrap("put portal", err)
		}
	}
	return s.wrap("put portal", tx.Commit())
}

// GetPortal returns ErrNotFound for an unknown name.
func (s *Store) GetPortal(ctx context.Context, name string) (Portal, error) {
	p, err := scanPortal(s.r.QueryRowContext(ctx, `SELECT `+portalColumns+` FROM portals WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Portal{}, fmt.Errorf("store: portal %q: %w", name, ErrNotFound)
	}
	return p, s.wrap("get portal", err)
}

// ListPortals returns every stored portal sorted by name.
func (s *Store) ListPortals(ctx context.Context) ([]Portal, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+portalColumns+` FROM portals ORDER BY name`)
	if err != nil {
		return nil, s.wrap("list portals", err)
	}
	defer rows.Close()
	var ps []Portal
	for rows.Next() {
		p, err := scanPortal(rows)
		if err != nil {
			return nil, s.wrap("list portals", err)
		}
		ps = append(ps, p)
	}
	return ps, s.wrap("list portals", rows.Err())
}

// DeletePortal removes a portal entry; purge also deletes its resources,
// history, cursors and runs. Without purge, a portal with stored resources
// keeps them (the entry is kept too, marked not connected).
func (s *Store) DeletePortal(ctx context.Context, name string, purge bool) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("delete portal", err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM portals WHERE name = ?`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: portal %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return s.wrap("delete portal", err)
	}
	if !purge {
		var kept int
		err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM resources WHERE portal = ?)
			OR EXISTS (SELECT 1 FROM resource_history WHERE portal = ?)`, name, name).Scan(&kept)
		if err != nil {
			return s.wrap("delete portal", err)
		}
		if kept != 0 {
			err = setConnection(ctx, tx, name, Connection{
				State:  StateNotConnected,
				Reason: "removed; stored records kept",
			})
			if err != nil {
				return s.wrap("delete portal", err)
			}
			return s.wrap("delete portal", tx.Commit())
		}
	}
	for _, q := range []string{
		`DELETE FROM resource_history WHERE portal = ?`,
		`DELETE FROM resources WHERE portal = ?`,
		`DELETE FROM resource_counts WHERE portal = ?`,
		`DELETE FROM cursors WHERE portal = ?`,
		`DELETE FROM sync_run_types WHERE run_id IN (SELECT id FROM sync_runs WHERE portal = ?)`,
		`DELETE FROM sync_runs WHERE portal = ?`,
		`DELETE FROM portals WHERE name = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, name); err != nil {
			return s.wrap("delete portal", err)
		}
	}
	return s.wrap("delete portal", tx.Commit())
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func setConnection(ctx context.Context, ex execer, name string, c Connection) error {
	if c.State == "" {
		c.State = StateNotConnected
	}
	res, err := ex.ExecContext(ctx, `UPDATE portals SET
			conn_state = ?, conn_reason = ?, connected_at = ?, disconnected_at = ?,
			patient_id = ?, patient_name = ?, patient_birth_date = ?, granted_scope = ?,
			has_refresh_token = ?, access_expires_at = ?, grant_expires_at = ?,
			last_sync_at = ?, last_sync_status = ?, updated_at = ?
		WHERE name = ?`,
		c.State, c.Reason, fmtTime(c.ConnectedAt), fmtTime(c.DisconnectedAt),
		c.PatientID, c.PatientName, c.PatientBirthDate, c.GrantedScope,
		boolInt(c.HasRefreshToken), fmtTime(c.AccessExpiresAt), fmtTime(c.GrantExpiresAt),
		fmtTime(c.LastSyncAt), c.LastSyncStatus, fmtTime(time.Now()), name)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("portal %q: %w", name, ErrNotFound)
	}
	return nil
}

// SetConnection replaces a portal's connection state.
func (s *Store) SetConnection(ctx context.Context, name string, c Connection) error {
	err := setConnection(ctx, s.w, name, c)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: %w", err)
	}
	return s.wrap("set connection", err)
}

// SetDiscovery caches the portal's SMART configuration and CapabilityStatement.
func (s *Store) SetDiscovery(ctx context.Context, name string, smartConfig, capability json.RawMessage) error {
	res, err := s.w.ExecContext(ctx, `UPDATE portals SET smart_config = ?, capability = ?,
			discovered_at = ?, updated_at = ? WHERE name = ?`,
		rawText(smartConfig), rawText(capability), fmtTime(time.Now()), fmtTime(time.Now()), name)
	if err != nil {
		return s.wrap("set discovery", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.wrap("set discovery", err)
	} else if n == 0 {
		return fmt.Errorf("store: portal %q: %w", name, ErrNotFound)
	}
	return nil
}
