package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// holdWriteLock begins a write transaction on s (BEGIN IMMEDIATE takes the
// database's write lock) and returns a function that commits it.
func holdWriteLock(t *testing.T, s *Store) (release func()) {
	t.Helper()
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE portals SET updated_at = updated_at`); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			if err := tx.Commit(); err != nil {
				t.Errorf("commit: %v", err)
			}
		}
	}
	t.Cleanup(release)
	return release
}

// Two *Store on one file use separate SQLite connections and file locks,
// exactly as two processes do.
func TestSecondOpenerFailsWithErrBusy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "onerecord.db")
	a := openAt(t, path, Options{})
	addPortal(t, a, "p")
	if _, err := a.UpsertResources(ctx, "p", []Resource{res("Patient", "a", "1")}, t0); err != nil {
		t.Fatal(err)
	}
	release := holdWriteLock(t, a)

	// Opening while another process writes works (nothing to migrate), and
	// reads see the last committed state.
	b := openAt(t, path, Options{BusyTimeout: 300 * time.Millisecond})
	if tot, err := b.ResourceTotals(ctx); err != nil || tot["p"] != 1 {
		t.Fatalf("read while locked: %v, %v", tot, err)
	}

	start := time.Now()
	_, err := b.UpsertResources(ctx, "p", []Resource{res("Patient", "b", "1")}, t0)
	waited := time.Since(start)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("write while locked: err = %v, want ErrBusy", err)
	}
	var be *BusyError
	if !errors.As(err, &be) || be.Hint() == "" || !strings.Contains(err.Error(), "another onerecord process") {
		t.Errorf("busy error lacks detail: %v", err)
	}
	if waited < 250*time.Millisecond {
		t.Errorf("gave up after %v, before the busy timeout", waited)
	}
	for name, f := range map[string]func() error{
		"SetConnection": func() error { return b.SetConnection(ctx, "p", Connection{State: StateConnected}) },
		"SetCursor":     func() error { return b.SetCursor(ctx, "p", Cursor{Key: "k"}) },
		"MarkDeleted":   func() error { _, err := b.MarkDeletedExcept(ctx, "p", "Patient", nil); return err },
	} {
		if err := f(); !errors.Is(err, ErrBusy) {
			t.Errorf("%s while locked: %v, want ErrBusy", name, err)
		}
	}
	release()
	if _, err := b.UpsertResources(ctx, "p", []Resource{res("Patient", "b", "1")}, t0); err != nil {
		t.Fatalf("write after release: %v", err)
	}
	verify(t, a)
}

func TestSecondOpenerWaits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "onerecord.db")
	a := openAt(t, path, Options{})
	addPortal(t, a, "p")
	b := openAt(t, path, Options{BusyTimeout: 20 * time.Second})

	release := holdWriteLock(t, a)
	done := make(chan error, 1)
	go func() {
		_, err := b.UpsertResources(ctx, "p", []Resource{res("Patient", "b", "1")}, t0)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write did not wait for the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiting write failed: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("waiting write never finished")
	}
	if _, err := a.GetResource(ctx, "p", "Patient", "b"); err != nil {
		t.Fatalf("a does not see b's write: %v", err)
	}
}

// Open of a store that needs migrating while another process holds the
// write lock must wait for it (migrations need the lock), then fail with
// ErrBusy; it must not touch the file.
func TestOpenNewStoreBusy(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	c := openAt(t, fresh, Options{})
	if _, err := c.w.Exec(`DROP TABLE schema_migrations`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.w.Exec(`CREATE TABLE keep_me (x)`); err != nil {
		t.Fatal(err)
	}
	tx2, err := c.w.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback()
	if _, err := tx2.Exec(`INSERT INTO keep_me VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	_, err = OpenWith(context.Background(), fresh, Options{BusyTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("open needing migration while locked: %v, want ErrBusy", err)
	}
}

// runWriter is the subprocess side of TestKilledMidBatch: it writes big
// batches (new, changed and deleted resources) until it is killed, printing
// a line after each commit.
func runWriter(path string) int {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := s.GetPortal(ctx, "p"); errors.Is(err, ErrNotFound) {
		if err := s.PutPortal(ctx, Portal{Name: "p", FHIRBase: "http://127.0.0.1:1/fhir"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	pad := strings.Repeat("x", 400)
	for round := 0; ; round++ {
		// Ids overlap half of the previous round's (changed, to history),
		// the other half is new; every tenth id is then marked deleted and
		// comes back (undeleted) in the next round when it overlaps.
		batch := make([]Resource, 0, 600)
		seen := map[string]bool{}
		for j := range 600 {
			id := fmt.Sprint(round*300 + j)
			seen[id] = j%10 != 0
			batch = append(batch, Resource{Type: "Observation", ID: id, VersionID: fmt.Sprint(round),
				Raw: fmt.Appendf(nil, `{"resourceType":"Observation","id":%q,"round":%d,"pad":%q}`, id, round, pad)})
		}
		if _, err := s.UpsertResources(ctx, "p", batch, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if round%2 == 1 {
			if _, err := s.MarkDeletedExcept(ctx, "p", "Observation", seen); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		fmt.Printf("round %d\n", round)
	}
}

func TestKilledMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "onerecord.db")
	for kill := range 3 {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envWriter+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		for range 1 + kill {
			if !lines.Scan() {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("writer stopped early: %s", stderr.String())
			}
		}
		// Another process reading while the writer works sees a consistent
		// snapshot.
		reader := openAt(t, path, Options{})
		if err := reader.Verify(ctx); err != nil {
			t.Fatalf("verify while the writer runs: %v", err)
		}
		reader.Close()
		// Kill at a random moment, most likely inside a batch.
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		go func() {
			for lines.Scan() {
			}
		}()
		cmd.Wait()

		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen after kill %d: %v", kill, err)
		}
		var check string
		if err := s.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check after kill %d = %q, %v", kill, check, err)
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatalf("after kill %d: %v", kill, err)
		}
		tot, err := s.ResourceTotals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tot["p"] == 0 {
			t.Fatalf("after kill %d: no resources", kill)
		}
		var hist int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM resource_history`).Scan(&hist); err != nil {
			t.Fatal(err)
		}
		t.Logf("after kill %d: %d live resources, %d history rows", kill, tot["p"], hist)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
