package home

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Two processes starting on a fresh home at once must agree on one
// installation id: the keychain entries are named by it, so tokens saved
// under a losing id would be lost.
func TestInstallationIDConcurrentFirstUse(t *testing.T) {
	for round := 0; round < 20; round++ {
		h := &Home{Dir: filepath.Join(t.TempDir(), "home")}
		const n = 16
		ids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// A separate Home value per caller, like separate processes.
				ids[i], errs[i] = (&Home{Dir: h.Dir}).InstallationID()
			}()
		}
		close(start)
		wg.Wait()
		for i := range ids {
			if errs[i] != nil {
				t.Fatalf("round %d: InstallationID: %v", round, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("round %d: callers got different ids %q and %q", round, ids[0], ids[i])
			}
		}
		again, err := h.InstallationID()
		if err != nil || again != ids[0] {
			t.Fatalf("round %d: id on disk %q (%v), handed out %q", round, again, err, ids[0])
		}
	}
}

func TestHomeModes(t *testing.T) {
	h := &Home{Dir: filepath.Join(t.TempDir(), "home")}
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := h.InstallationID(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(h.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("home mode = %o, want 700", st.Mode().Perm())
	}
	st, err = os.Stat(filepath.Join(h.Dir, "installation-id"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("installation-id mode = %o, want 600", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(h.Dir)
	for _, e := range ents {
		if e.Name() != "installation-id" {
			t.Errorf("stray file %s left in the home", e.Name())
		}
	}
}
