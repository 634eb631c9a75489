// Package sync is onerecord's sync engine: for each connected portal it plans
// the FHIR searches the server supports and the grant allows (planner.go),
// runs them with a bounded worker pool, streams every page into the store in
// one transaction per page, keeps per-search incremental cursors, marks
// resources missing from a complete re-pull as deleted, fetches referenced
// Practitioner, Organization, Location and Medication resources, and returns
// a completeness report: what was planned, fetched, denied and failed.
//
// The engine never prints: the CLI gets progress through Options.Progress and
// asks the person to reconnect a lapsed portal through Options.Reconnect.
//
// Start with Engine and Engine.Run.
package sync
