package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStartProfileWritesAPrivateProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	t.Setenv(profileEnv, path)
	stop := startProfile()
	stop()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() == 0 {
		t.Error("the profile is empty")
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("profile mode %v, want 0600", st.Mode().Perm())
	}
}

func TestStartProfileWithoutTheVariableDoesNothing(t *testing.T) {
	t.Setenv(profileEnv, "")
	startProfile()()
}
