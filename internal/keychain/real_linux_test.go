//go:build linux

// Tests against the real freedesktop Secret Service (gnome-keyring over
// D-Bus). CI runs them under dbus-run-session with an unlocked
// gnome-keyring and ONERECORD_REQUIRE_INTEGRATION=1; elsewhere they skip
// when the pieces are missing. The error-path tests run a child process
// (this test binary again) against a bus that has no provider, no bus at
// all, a locked keyring or a frozen provider, because godbus keeps one
// session-bus connection per process.

package keychain

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dbus "github.com/godbus/dbus/v5"

	"github.com/onerecord/onerecord/internal/testenv"
)

// Variables the child process reads.
const (
	childEnv        = "ONERECORD_KEYCHAIN_TEST_CHILD" // account to Set then Get
	childSecretEnv  = "ONERECORD_KEYCHAIN_TEST_SECRET"
	childTimeoutEnv = "ONERECORD_KEYCHAIN_TEST_TIMEOUT"
	childResultTag  = "KEYCHAIN-CHILD-RESULT "
)

func TestMain(m *testing.M) {
	if account := os.Getenv(childEnv); account != "" {
		os.Exit(runChild(account))
	}
	os.Exit(m.Run())
}

// childResult is what the child reports on stdout.
type childResult struct {
	Kind  string // sentinel name, "" when none, "unclassified" when an error has no kind
	Error string
	Hint  string
}

var kindNames = map[error]string{
	ErrNotFound: "ErrNotFound", ErrNoDBus: "ErrNoDBus", ErrNoProvider: "ErrNoProvider",
	ErrLocked: "ErrLocked", ErrTimeout: "ErrTimeout", ErrUnsupported: "ErrUnsupported", ErrCorrupt: "ErrCorrupt",
}

func runChild(account string) int {
	timeout, _ := time.ParseDuration(os.Getenv(childTimeoutEnv))
	k := New(Options{Timeout: timeout})
	secret := []byte(os.Getenv(childSecretEnv))
	ctx := context.Background()
	err := k.Set(ctx, account, secret)
	if err == nil {
		var got []byte
		if got, err = k.Get(ctx, account); err == nil && !bytes.Equal(got, secret) {
			err = errors.New("read back a different value")
		}
		if err == nil {
			err = k.Delete(ctx, account)
		}
	}
	var r childResult
	if err != nil {
		r.Error, r.Kind = err.Error(), "unclassified"
		for kind, name := range kindNames {
			if errors.Is(err, kind) {
				r.Kind = name
			}
		}
		var h interface{ Hint() string }
		if errors.As(err, &h) {
			r.Hint = h.Hint()
		}
	}
	b, _ := json.Marshal(r)
	fmt.Printf("%s%s\n", childResultTag, b)
	return 0
}

// inChild runs Set, Get and Delete of a secret in a child process with env
// added to (and DBUS_SESSION_BUS_ADDRESS removed from) this one's, and
// checks the secret appears nowhere in what it printed.
func inChild(t *testing.T, timeout time.Duration, env ...string) childResult {
	t.Helper()
	secret := "s3cret-" + fmt.Sprintf("%x", randomBytes(t, 8))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DBUS_SESSION_BUS_ADDRESS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"=child-"+secret[7:], childSecretEnv+"="+secret,
		childTimeoutEnv+"="+timeout.String())
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte(secret)) {
		t.Errorf("the secret appears in the child's output:\n%s", out)
	}
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(line, childResultTag); ok {
			var r childResult
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				t.Fatal(err)
			}
			t.Logf("child: kind=%s error=%q", r.Kind, r.Error)
			return r
		}
	}
	t.Fatalf("child printed no result:\n%s", out)
	return childResult{}
}

func requireKind(t *testing.T, r childResult, kind string, hintWords ...string) {
	t.Helper()
	if r.Kind != kind {
		t.Fatalf("child error kind = %q (%s), want %s", r.Kind, r.Error, kind)
	}
	if !strings.HasPrefix(r.Error, "keychain: ") {
		t.Errorf("error %q does not start with keychain:", r.Error)
	}
	for _, w := range hintWords {
		if !strings.Contains(r.Hint, w) {
			t.Errorf("hint lacks %q:\n%s", w, r.Hint)
		}
	}
}

func lookPath(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Missing(t, name+" ("+pkg+")", err)
	}
	return p
}

// realKeychain is the session's Secret Service, or a skip (a failure in CI).
func realKeychain(t *testing.T) *Keychain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := New(Options{Timeout: 15 * time.Second})
	if err := k.Probe(ctx); err != nil {
		testenv.Missing(t, "Secret Service keychain", err)
	}
	return k
}

// secretTool looks an entry up the way any libsecret client would, by the
// attributes go-keyring sets. ok is false when there is no such entry.
func secretTool(t *testing.T, account string) (value string, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "secret-tool", "lookup", "service", Service, "username", account)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), true
	case errors.As(err, &ee) && ee.ExitCode() == 1 && stderr.Len() == 0:
		return "", false
	}
	t.Fatalf("secret-tool lookup %q: %v: %s", account, err, stderr.String())
	return "", false
}

// storedEntries checks with secret-tool that account is stored as exactly
// the main entry plus its chunks and that they join to want.
func storedEntries(t *testing.T, account string, want []byte) int {
	t.Helper()
	main, ok := secretTool(t, account)
	if !ok {
		t.Fatalf("secret-tool does not find %q", account)
	}
	h, first, err := parseMain(main)
	if err != nil {
		t.Fatalf("main entry as secret-tool sees it: %v", err)
	}
	pieces := []string{first}
	for i := 1; i < h.count; i++ {
		p, ok := secretTool(t, chunkAccount(account, i))
		if !ok {
			t.Fatalf("secret-tool does not find chunk %d of %d", i, h.count)
		}
		pieces = append(pieces, p)
	}
	if _, ok := secretTool(t, chunkAccount(account, h.count)); ok {
		t.Errorf("a stale chunk %d is still stored", h.count)
	}
	got, err := decodeValue(h, pieces)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("entries seen by secret-tool do not join to the value: %v", err)
	}
	return h.count
}

func TestRealKeychainChunkedRoundTrip(t *testing.T) {
	lookPath(t, "secret-tool", "libsecret-tools")
	k := realKeychain(t)
	ctx := context.Background()
	account := fmt.Sprintf("test-%x", randomBytes(t, 6))
	t.Cleanup(func() { _ = k.Delete(context.Background(), account) })

	long := tokenJSON(t, 8192)
	if err := k.Set(ctx, account, long); err != nil {
		t.Fatal(err)
	}
	got, err := k.Get(ctx, account)
	if err != nil || !bytes.Equal(got, long) {
		t.Fatalf("Get of the 8 KB value: %d bytes, %v", len(got), err)
	}
	n := storedEntries(t, account, long)
	if n < 5 {
		t.Fatalf("8 KB stored in %d entries, want it chunked into at least 5", n)
	}

	short := tokenJSON(t, 3000)
	if err := k.Set(ctx, account, short); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Get(ctx, account); err != nil || !bytes.Equal(got, short) {
		t.Fatalf("Get after overwrite: %d bytes, %v", len(got), err)
	}
	if m := storedEntries(t, account, short); m != 2 {
		t.Fatalf("3 KB stored in %d entries, want 2", m)
	}
	for i := 2; i < n; i++ {
		if _, ok := secretTool(t, chunkAccount(account, i)); ok {
			t.Errorf("chunk %d of the longer value is still stored", i)
		}
	}

	binary := randomBytes(t, 5000)
	if err := k.Set(ctx, account, binary); err != nil {
		t.Fatal(err)
	}
	if got, err := k.Get(ctx, account); err != nil || !bytes.Equal(got, binary) {
		t.Fatalf("binary value: %d bytes, %v", len(got), err)
	}
	m := storedEntries(t, account, binary)

	if err := k.Delete(ctx, account); err != nil {
		t.Fatal(err)
	}
	for i := range max(n, m) {
		name := account
		if i > 0 {
			name = chunkAccount(account, i)
		}
		if _, ok := secretTool(t, name); ok {
			t.Errorf("%q is still stored after Delete", name)
		}
	}
	if _, err := k.Get(ctx, account); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
}

func TestRealNoDBusSession(t *testing.T) {
	t.Run("address points nowhere", func(t *testing.T) {
		r := inChild(t, 5*time.Second, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(t.TempDir(), "no-such-socket"))
		requireKind(t, r, "ErrNoDBus", "dbus-run-session", "gnome-keyring-daemon --unlock")
	})
	t.Run("address unset", func(t *testing.T) {
		dir := fmt.Sprintf("/run/user/%d", os.Getuid())
		for _, name := range []string{"bus", "dbus-session"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Skipf("%s/%s exists: a session bus is found without the variable", dir, name)
			}
		}
		// godbus would "autolaunch" a new bus with dbus-launch, leaving a
		// daemon behind; a dbus-launch that records being run proves the
		// keychain does not let it.
		bin := t.TempDir()
		marker := filepath.Join(bin, "dbus-launch-ran")
		script := "#!/bin/sh\ntouch '" + marker + "'\nexit 1\n"
		if err := os.WriteFile(filepath.Join(bin, "dbus-launch"), []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		r := inChild(t, 5*time.Second, "PATH="+bin)
		requireKind(t, r, "ErrNoDBus", "dbus-run-session")
		if !strings.Contains(r.Error, "DBUS_SESSION_BUS_ADDRESS is not set") {
			t.Errorf("error does not say the variable is unset: %s", r.Error)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Error("dbus-launch was run")
		}
	})
}

// privateBus starts a D-Bus session daemon of our own, with no service
// files, so nothing is activated on it behind our back; it is killed when
// the test ends.
func privateBus(t *testing.T) string {
	t.Helper()
	daemon := lookPath(t, "dbus-daemon", "dbus")
	// A short directory: socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "kc-bus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=` + dir + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`
	confPath := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+confPath, "--nofork", "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		testenv.Missing(t, "a private dbus-daemon", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return addr
	case <-time.After(20 * time.Second):
		t.Fatal("dbus-daemon did not print its address")
	}
	return ""
}

// keyringDaemon is a gnome-keyring-daemon on a private bus with its own
// home; it runs in the foreground, so it is our child and is killed by PID.
type keyringDaemon struct {
	t    *testing.T
	bus  string
	home string
}

func newKeyringDaemon(t *testing.T, bus string) *keyringDaemon {
	lookPath(t, "gnome-keyring-daemon", "gnome-keyring")
	return &keyringDaemon{t: t, bus: bus, home: t.TempDir()}
}

// start runs the daemon; with a password it unlocks (or creates) the login
// keyring, without one the keyring stays locked.
func (d *keyringDaemon) start(password string) *exec.Cmd {
	t := d.t
	t.Helper()
	run := filepath.Join(d.home, "run")
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"--foreground", "--components=secrets"}
	if password != "" {
		args = append(args, "--unlock")
	}
	cmd := exec.Command("gnome-keyring-daemon", args...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + d.home,
		"XDG_DATA_HOME=" + filepath.Join(d.home, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(d.home, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(d.home, "cache"),
		"XDG_RUNTIME_DIR=" + run,
		"DBUS_SESSION_BUS_ADDRESS=" + d.bus,
	}
	cmd.Stdin = strings.NewReader(password)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		testenv.Missing(t, "gnome-keyring-daemon", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			d.stop(cmd)
		}
	})
	if err := waitForName(d.bus, "org.freedesktop.secrets", 20*time.Second); err != nil {
		d.stop(cmd)
		stopped = true
		t.Fatalf("gnome-keyring-daemon did not register: %v\n%s", err, logs.String())
	}
	return cmd
}

func (d *keyringDaemon) stop(cmd *exec.Cmd) {
	_ = cmd.Process.Kill() // SIGKILL also ends a stopped process
	_ = cmd.Wait()
	// The name is released when the process's connection closes.
	_ = waitForName(d.bus, "", 10*time.Second)
}

// waitForName polls the bus until name has an owner (or, with name "",
// until org.freedesktop.secrets has none).
func waitForName(addr, name string, within time.Duration) error {
	conn, err := dbus.Connect(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	want := name != ""
	if name == "" {
		name = "org.freedesktop.secrets"
	}
	deadline := time.Now().Add(within)
	for {
		var has bool
		if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err != nil {
			return err
		}
		if has == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s owner present = %v after %v", name, has, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRealNoSecretServiceProvider(t *testing.T) {
	bus := privateBus(t)
	r := inChild(t, 5*time.Second, "DBUS_SESSION_BUS_ADDRESS="+bus)
	requireKind(t, r, "ErrNoProvider", "gnome-keyring", "org.freedesktop.secrets")
	if !strings.Contains(r.Error, "org.freedesktop.secrets") {
		t.Errorf("error does not name the missing service: %s", r.Error)
	}
}

func TestRealLockedKeyring(t *testing.T) {
	bus := privateBus(t)
	d := newKeyringDaemon(t, bus)
	env := "DBUS_SESSION_BUS_ADDRESS=" + bus

	// Create the login keyring with a password, and use it.
	cmd := d.start("correct horse")
	if r := inChild(t, 10*time.Second, env); r.Kind != "" {
		t.Fatalf("unlocked private keyring: %s", r.Error)
	}
	d.stop(cmd)

	// Restarted without the password, as after a reboot without a desktop
	// login: the keyring is locked and no prompt can be shown.
	cmd = d.start("")
	r := inChild(t, 10*time.Second, env)
	requireKind(t, r, "ErrLocked", "unlock", "gnome-keyring-daemon --replace --unlock")
	d.stop(cmd)

	// Unlocking with the password on stdin, as the hint says, fixes it.
	d.start("correct horse")
	if r := inChild(t, 10*time.Second, env); r.Kind != "" {
		t.Fatalf("after unlocking: %s", r.Error)
	}
}

func TestRealFrozenSecretServiceTimesOut(t *testing.T) {
	bus := privateBus(t)
	d := newKeyringDaemon(t, bus)
	cmd := d.start("pw")
	// A provider that accepts calls and never answers.
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	r := inChild(t, time.Second, "DBUS_SESSION_BUS_ADDRESS="+bus)
	requireKind(t, r, "ErrTimeout", "did not answer")
}
