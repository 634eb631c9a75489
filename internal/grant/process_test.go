package grant_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/onerecord/onerecord/internal/grant"
	"github.com/onerecord/onerecord/internal/home"
	"github.com/onerecord/onerecord/internal/keychain"
	"github.com/onerecord/onerecord/internal/sandbox"
	"github.com/onerecord/onerecord/internal/store"
	"github.com/onerecord/onerecord/internal/testenv"
)

// Environment of the helper process (this test binary re-executed).
const (
	envHelper  = "GRANT_TEST_HELPER" // "refresh"
	envHome    = "GRANT_TEST_HOME"
	envSecrets = "GRANT_TEST_SECRETS" // a directory (dirSecrets) or "keychain"
	envCalls   = "GRANT_TEST_CALLS"
)

func TestMain(m *testing.M) {
	if os.Getenv(envHelper) == "refresh" {
		if err := refreshHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// refreshHelper asks for a token GRANT_TEST_CALLS times with a clock two
// hours ahead, so that every call refreshes.
func refreshHelper() error {
	ctx := context.Background()
	h := &home.Home{Dir: os.Getenv(envHome)}
	st, err := store.Open(ctx, h.DBPath())
	if err != nil {
		return err
	}
	defer st.Close()
	var secrets keychain.Secrets = dirSecrets{dir: os.Getenv(envSecrets)}
	if os.Getenv(envSecrets) == "keychain" {
		secrets = keychain.New(keychain.Options{})
	}
	m := &grant.Manager{Store: st, Secrets: secrets, HTTP: &http.Client{Timeout: 30 * time.Second}, Home: h,
		Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}
	p, err := st.GetPortal(ctx, "sandbox")
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(os.Getenv(envCalls))
	src := m.Source(p)
	for i := 0; i < n; i++ {
		tok, err := src.Token(ctx)
		if err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
		if tok == "" {
			return fmt.Errorf("call %d: empty token", i)
		}
	}
	return nil
}

// runTwoProcesses connects in this process, then lets two helper processes
// refresh the same grant at the same time.
func runTwoProcesses(t *testing.T, secrets keychain.Secrets, secretsEnv string) {
	sb := startSandbox(t, sandbox.Options{AutoApprove: true})
	e := newEnv(t, "", secrets)
	e.connect(t, sandboxPortal(sb), nil)
	t.Cleanup(func() {
		id, _ := e.home.InstallationID()
		secrets.Delete(context.Background(), grant.TokenAccount(id, "sandbox"))
	})
	sb.ResetStats()

	const calls = 10
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	outs := make([]*lockedBuf, 2)
	for i := range outs {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), envHelper+"=refresh", envHome+"="+e.dir, envSecrets+"="+secretsEnv, envCalls+"="+strconv.Itoa(calls))
		outs[i] = &lockedBuf{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i].String())
		}
	}
	st := sb.Stats()
	if st.ReuseDetected != 0 {
		t.Fatalf("a rotated refresh token was presented again (%d times)", st.ReuseDetected)
	}
	if st.Refreshes != 2*calls {
		t.Errorf("refreshes = %d, want %d", st.Refreshes, 2*calls)
	}
	if got := fhirGet(t, sb, e.tokens(t, "sandbox").AccessToken); got != 200 {
		t.Errorf("the stored access token answers %d", got)
	}
	if c := e.portal(t, "sandbox").Conn; c.State != store.StateConnected {
		t.Errorf("portal %s (%s)", c.State, c.Reason)
	}
}

func TestTwoProcessesNeverReuseARefreshToken(t *testing.T) {
	dir := t.TempDir()
	runTwoProcesses(t, dirSecrets{dir: dir}, dir)
}

func TestTwoProcessesWithTheOSKeychain(t *testing.T) {
	kc := keychain.New(keychain.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := kc.Probe(ctx); err != nil {
		testenv.Missing(t, "Secret Service keychain", err)
	}
	runTwoProcesses(t, kc, "keychain")
}
