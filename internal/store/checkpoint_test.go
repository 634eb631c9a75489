package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func withCheckpointEvery(t *testing.T, n int64) {
	t.Helper()
	old := checkpointEvery
	checkpointEvery = n
	t.Cleanup(func() { checkpointEvery = old })
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

var padding = strings.Repeat("x", 1400)

// padded is a resource of about 1.5 KB.
func padded(id string, round int) Resource {
	return Resource{Type: "Observation", ID: id, VersionID: fmt.Sprint(round),
		Raw: fmt.Appendf(nil, `{"resourceType":"Observation","id":"%s","round":%d,"pad":"%s"}`, id, round, padding)}
}

// The background checkpointer copies committed pages into the database file
// while the store is open, without the writer checkpointing (its automatic
// checkpoint is far away here).
func TestBackgroundCheckpointCopiesWAL(t *testing.T) {
	withCheckpointEvery(t, 256<<10)
	path := filepath.Join(t.TempDir(), "onerecord.db")
	s := openAt(t, path, Options{walAutocheckpoint: 1 << 20})
	addPortal(t, s, "p")
	before := fileSize(t, path)
	for b := range 4 {
		var rs []Resource
		for i := range 200 {
			rs = append(rs, padded(fmt.Sprint(b*200+i), 0))
		}
		upsertWant(t, s, rs, UpsertCounts{New: 200})
	}
	// 1.2 MB committed: the first run was due after 256 KB.
	deadline := time.Now().Add(time.Minute)
	for s.ckpt.runs.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.ckpt.runs.Load() == 0 {
		t.Fatal("no background checkpoint ran")
	}
	if after := fileSize(t, path); after < before+256<<10 {
		t.Fatalf("database file %d bytes before the writes and %d after: the WAL was not copied in", before, after)
	}
	verify(t, s)
}

// With background checkpoints running, the WAL stays bounded: the writer's
// automatic checkpoint (1 MB here) still completes and the WAL starts over,
// instead of growing with everything written (12 MB).
func TestWALBoundedWithBackgroundCheckpoints(t *testing.T) {
	withCheckpointEvery(t, 128<<10)
	path := filepath.Join(t.TempDir(), "onerecord.db")
	s := openAt(t, path, Options{walAutocheckpoint: 32}) // 32 pages of 32 KB
	addPortal(t, s, "p")
	// Built beforehand, so that the writer writes without a pause, as in a
	// first sync where it is the bottleneck.
	var batches [][]Resource
	for b := range 40 { // 8,000 resources of 1.5 KB
		var rs []Resource
		for i := range 200 {
			rs = append(rs, padded(fmt.Sprint(b*200+i), 0))
		}
		batches = append(batches, rs)
	}
	var biggest int64
	for _, rs := range batches {
		upsertWant(t, s, rs, UpsertCounts{New: 200})
		biggest = max(biggest, fileSize(t, path+"-wal"))
	}
	if s.ckpt.runs.Load() == 0 {
		t.Error("no background checkpoint ran")
	}
	t.Logf("biggest WAL %d", biggest)
	if biggest > 6<<20 {
		t.Fatalf("the WAL grew to %d bytes while 12 MB were written with a 1 MB automatic checkpoint", biggest)
	}
	verify(t, s)
}

// Close waits for a running background checkpoint and leaves everything in
// the database file; the data reads back and Close can be called twice.
func TestCloseWithBackgroundCheckpoint(t *testing.T) {
	withCheckpointEvery(t, 1)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "onerecord.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	addPortal(t, s, "p")
	for b := range 5 {
		var rs []Resource
		for i := range 100 {
			rs = append(rs, padded(fmt.Sprint(b*100+i), 0))
		}
		if _, err := s.UpsertResources(ctx, "p", rs, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if n := fileSize(t, path+"-wal"); n != 0 {
		t.Fatalf("WAL left with %d bytes after Close", n)
	}
	s2 := openAt(t, path, Options{})
	counts, err := s2.CountResources(ctx, "p")
	if err != nil || counts["Observation"] != 500 {
		t.Fatalf("counts after reopen %v, %v", counts, err)
	}
	verify(t, s2)
}
