package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// envWriter switches the test binary into the writer subprocess used by
// TestKilledMidBatch; its value is the database path.
const envWriter = "ONERECORD_STORE_TEST_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(envWriter); path != "" {
		os.Exit(runWriter(path))
	}
	code := m.Run()
	cleanupBench()
	os.Exit(code)
}

func openTest(t testing.TB) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "onerecord.db"), Options{})
}

func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func addPortal(t testing.TB, s *Store, name string) {
	t.Helper()
	err := s.PutPortal(context.Background(), Portal{
		Name: name, DisplayName: "Portal " + name, FHIRBase: "http://127.0.0.1:1/fhir", ClientID: "c-" + name, Source: "user",
	})
	if err != nil {
		t.Fatalf("put portal: %v", err)
	}
}

// res builds a resource whose raw JSON carries content, so a different
// content gives a different hash.
func res(typ, id, content string) Resource {
	return Resource{
		Type: typ, ID: id, VersionID: content, LastUpdated: "2024-01-02T03:04:05Z",
		Raw: []byte(fmt.Sprintf(`{"resourceType":%q,"id":%q,"meta":{"versionId":%q},"note":%q}`, typ, id, content, content)),
	}
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)

// verify fails the test unless the integrity check passes and the
// maintained counters match the rows.
func verify(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Verify(context.Background()); err != nil {
		t.Fatalf("verify: %v", err)
	}
}
