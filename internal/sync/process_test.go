package sync

// Tests with real subprocesses: this test binary re-executed as a sync
// process (helperMain) on a shared home, with tokens in a file-backed
// keychain stand-in that both processes see (keychain.Memory is per process).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/pkg/fhir"
)

const helperEnv = "ONERECORD_SYNC_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// fileSecrets is a keychain.Secrets in a directory, for tests that need
// tokens shared between processes. Writes are atomic (temp file + rename).
type fileSecrets struct{ dir string }

func (f fileSecrets) path(account string) string {
	sum := sha256.Sum256([]byte(account))
	return filepath.Join(f.dir, hex.EncodeToString(sum[:8]))
}

func (f fileSecrets) Get(ctx context.Context, account string) ([]byte, error) {
	b, err := os.ReadFile(f.path(account))
	if errors.Is(err, os.ErrNotExist) {
		return nil, keychain.ErrNotFound
	}
	return b, err
}

func (f fileSecrets) Set(ctx context.Context, account string, value []byte) error {
	tmp, err := os.CreateTemp(f.dir, "tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(value); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	tmp.Close()
	return os.Rename(tmp.Name(), f.path(account))
}

func (f fileSecrets) Delete(ctx context.Context, account string) error {
	err := os.Remove(f.path(account))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// helperMain runs one sync in this process and prints the report as JSON.
// Settings come from the environment (see startHelper).
func helperMain() int {
	ctx := context.Background()
	h := &home.Home{Dir: os.Getenv("HELPER_HOME")}
	st, err := store.Open(ctx, h.DBPath())
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer st.Close()
	secrets := fileSecrets{dir: os.Getenv("HELPER_SECRETS")}
	mgr := &grant.Manager{Store: st, Secrets: secrets, Home: h}
	pageSize, _ := strconv.Atoi(os.Getenv("HELPER_PAGE_SIZE"))
	eng := &Engine{Store: st, Grants: ManagerGrants{M: mgr}, FHIR: fhir.Options{PageSize: pageSize}}
	if os.Getenv("HELPER_LOCK") == "1" {
		eng.LockPath = h.LockPath("sync")
	}
	rep, err := eng.Run(ctx, Options{Full: os.Getenv("HELPER_FULL") == "1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

type helperProc struct {
	cmd    *exec.Cmd
	out    *os.File
	outErr *os.File
}

func startHelper(t *testing.T, e *testEnv, secretsDir string, lock, full bool, pageSize int) *helperProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	cmd.Env = append(os.Environ(), helperEnv+"=1", "HELPER_HOME="+e.home.Dir, "HELPER_SECRETS="+secretsDir,
		"HELPER_LOCK="+b(lock), "HELPER_FULL="+b(full), "HELPER_PAGE_SIZE="+strconv.Itoa(pageSize))
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hp := &helperProc{cmd: cmd, out: out, outErr: errf}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return hp
}

// wait returns the helper's report.
func (hp *helperProc) wait(t *testing.T) *Report {
	t.Helper()
	err := hp.cmd.Wait()
	stdout, _ := os.ReadFile(hp.out.Name())
	stderr, _ := os.ReadFile(hp.outErr.Name())
	if err != nil {
		t.Fatalf("helper failed: %v\nstderr: %s", err, stderr)
	}
	var rep Report
	if err := json.Unmarshal(stdout, &rep); err != nil {
		t.Fatalf("helper output: %v\n%s\nstderr: %s", err, stdout, stderr)
	}
	return &rep
}

func newSharedEnv(t *testing.T, opts sandbox.Options) (*testEnv, string) {
	t.Helper()
	secretsDir := filepath.Join(t.TempDir(), "secrets")
	if err := os.MkdirAll(secretsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return newTestEnvIn(t, opts, &home.Home{Dir: t.TempDir()}, fileSecrets{dir: secretsDir}), secretsDir
}

// Two sync processes refresh the same single-use, rotating refresh token
// over and over (access tokens live 30 s, so every request refreshes): the
// cross-process refresh lock must keep them from ever presenting a spent one.
func TestTwoProcessesNeverReuseARefreshToken(t *testing.T) {
	e, secretsDir := newSharedEnv(t, sandbox.Options{Resources: 200, Seed: 8, AccessTTL: 30 * time.Second})
	e.sb.ResetStats()
	a := startHelper(t, e, secretsDir, false, true, 10)
	b := startHelper(t, e, secretsDir, false, true, 10)
	for _, rep := range []*Report{a.wait(t), b.wait(t)} {
		if p := onlyPortal(t, rep); p.Status != StatusOK {
			t.Errorf("a process ended %s (%s, %s): %+v", p.Status, p.Error, p.Reason, p.Types)
		}
	}
	st := e.sb.Stats()
	if st.ReuseDetected != 0 {
		t.Fatalf("refresh token reuse detected %d times", st.ReuseDetected)
	}
	if st.Refreshes < 10 {
		t.Errorf("only %d refreshes: the test did not exercise rotation", st.Refreshes)
	}
	e.wantComplete()
	t.Logf("%d refreshes, %d FHIR requests, no reuse", st.Refreshes, st.FHIRRequests)
}

// kill -9 in the middle of a sync: the store passes its integrity check, the
// OS released the sync lock, and the next sync completes the job.
func TestKill9DuringSyncThenResync(t *testing.T) {
	e, secretsDir := newSharedEnv(t, sandbox.Options{Resources: 400, Seed: 12})
	e.sb.SetFaults(sandbox.Faults{SlowPage: 25 * time.Millisecond})
	hp := startHelper(t, e, secretsDir, true, false, 5)

	// Wait until the child has stored a good part, but not all.
	ctx := context.Background()
	want := total(e.sb.Counts(e.patient))
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n := total(e.counts()); n >= 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the helper stored nothing in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// While it runs, a second sync is refused with the holder's pid.
	e.eng.LockPath = e.home.LockPath("sync")
	_, err := e.eng.Run(ctx, Options{})
	var be *BusyError
	if !errors.As(err, &be) || be.PID != hp.cmd.Process.Pid {
		t.Errorf("concurrent sync: %v (pid %d), want BusyError naming pid %d", err, pidOf(be), hp.cmd.Process.Pid)
	}

	if err := hp.cmd.Process.Kill(); err != nil { // SIGKILL on Unix
		t.Fatal(err)
	}
	hp.cmd.Wait()
	stored := total(e.counts())
	if stored >= want {
		t.Fatalf("the helper finished (%d of %d) before it was killed; slow it down", stored, want)
	}
	if err := e.st.Verify(ctx); err != nil {
		t.Fatalf("store after kill -9: %v", err)
	}

	e.sb.SetFaults(sandbox.Faults{})
	p := onlyPortal(t, e.run(Options{}))
	if p.Status != StatusOK {
		t.Fatalf("resync after kill: %s %+v", p.Status, p.Types)
	}
	e.wantComplete()
	if err := e.st.Verify(ctx); err != nil {
		t.Fatalf("store after resync: %v", err)
	}
	t.Logf("killed after %d of %d stored; resync completed", stored, want)
}

func pidOf(be *BusyError) int {
	if be == nil {
		return 0
	}
	return be.PID
}
