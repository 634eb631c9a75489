package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/onerecord/onerecord/internal/keychain"
)

// envSession marks the copy of this program that runs inside the private
// D-Bus session it started.
const envSession = "ONERECORD_BENCH_SESSION"

// ensureSession re-runs this program under dbus-run-session when there is no
// D-Bus session bus (a server, CI), as .ci/run does for the tests. It
// reports the child's exit code and true when it did.
func ensureSession() (int, bool) {
	if runtime.GOOS != "linux" || os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return 0, false
	}
	if os.Getenv(envSession) != "" {
		fmt.Fprintln(os.Stderr, "onerecord-bench: dbus-run-session started no session bus")
		return 1, true
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "onerecord-bench: %v\n", err)
		return 1, true
	}
	if _, err := exec.LookPath("dbus-run-session"); err != nil {
		fmt.Fprintln(os.Stderr, "onerecord-bench: no D-Bus session and no dbus-run-session to start one; install dbus and gnome-keyring (see docs/performance.md)")
		return 1, true
	}
	cmd := exec.Command("dbus-run-session", append([]string{"--", exe}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), envSession+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, true
	case errors.As(err, &ee):
		return ee.ExitCode(), true
	}
	fmt.Fprintf(os.Stderr, "onerecord-bench: dbus-run-session: %v\n", err)
	return 1, true
}

// startKeyring runs an unlocked gnome-keyring-daemon (secrets only) on the
// private session bus, with its keyring files in dir, and waits until the
// Secret Service answers. The caller kills it by PID.
func (b *bench) startKeyring(ctx context.Context, dir string) error {
	if os.Getenv(envSession) == "" {
		return nil // the person's own session and keychain
	}
	if _, err := exec.LookPath("gnome-keyring-daemon"); err != nil {
		return fmt.Errorf("gnome-keyring-daemon not found (install gnome-keyring): %w", err)
	}
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(run, 0o700); err != nil {
		return err
	}
	cmd := exec.Command("gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"XDG_RUNTIME_DIR=" + run,
		"DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS"),
	}
	cmd.Stdin = strings.NewReader("\n") // the (empty) password of the new login keyring
	logPath := filepath.Join(dir, "daemon.log")
	logs, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start gnome-keyring-daemon: %w", err)
	}
	b.children = append(b.children, cmd)
	// Probing before the daemon owns the name would make D-Bus activate
	// another (locked) keyring daemon.
	if err := waitForSecrets(ctx, os.Getenv("DBUS_SESSION_BUS_ADDRESS"), 20*time.Second); err != nil {
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("gnome-keyring-daemon did not register: %w\n%s", err, out)
	}
	kc := keychain.New(keychain.Options{Timeout: 2 * time.Second})
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := kc.Probe(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("the keyring did not become usable: %w\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForSecrets polls the bus until org.freedesktop.secrets has an owner,
// without activating anything.
func waitForSecrets(ctx context.Context, addr string, within time.Duration) error {
	conn, err := dbus.Connect(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(within)
	for {
		var has bool
		err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.secrets").Store(&has)
		if err == nil && has {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err == nil {
				err = errors.New("org.freedesktop.secrets has no owner")
			}
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
