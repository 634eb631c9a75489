package keychain

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"

	keyring "github.com/zalando/go-keyring"
)

// Error is what every Keychain and Memory call returns on failure. Kind is
// one of the package's sentinels when the cause is known (errors.Is works
// on it) and Err is what the platform reported. Neither ever holds the
// secret value.
type Error struct {
	Op      string // "get", "set", "delete" or "probe"
	Account string
	Kind    error // ErrNotFound, ErrNoDBus, ...; nil when not recognised
	Err     error // the platform's error or a detail; may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("keychain: ")
	b.WriteString(e.Op)
	if e.Account != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.Account))
	}
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "keychain: "))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Hint says what the person can do about it, for this platform.
func (e *Error) Hint() string { return hintFor(e.Kind, runtime.GOOS) }

// The Linux hints name the two situations people hit: a desktop session
// whose login keyring is locked or missing, and a machine without a desktop
// (SSH, a server, a container, WSL) where nothing provides a session bus or a
// Secret Service until started by hand.
const (
	linuxHeadlessHowTo = "on a machine without a desktop, run onerecord inside a D-Bus session with gnome-keyring unlocked:\n" +
		"  dbus-run-session -- sh -c 'printf %s \"$KEYRING_PASSWORD\" | gnome-keyring-daemon --unlock --components=secrets >/dev/null; onerecord ...'\n" +
		"(see docs/keychain.md)"
)

func hintFor(kind error, goos string) string {
	switch kind {
	case ErrNotFound:
		return "the portal's tokens are not in the keychain (removed or never stored): connect the portal again with `onerecord connect <portal>`"
	case ErrCorrupt:
		return "the keychain entry is incomplete, probably from an interrupted write: connect the portal again with `onerecord connect <portal>`, which replaces it"
	case ErrNoDBus:
		return "the Secret Service is reached over the D-Bus session bus, and this process has none (DBUS_SESSION_BUS_ADDRESS is unset or points nowhere).\n" +
			"On a desktop, run onerecord from a terminal inside your graphical session; over SSH, use a login that starts a user session (systemd --user).\n" +
			"Otherwise, " + linuxHeadlessHowTo
	case ErrNoProvider:
		return "no program provides the Secret Service (org.freedesktop.secrets) on this D-Bus session.\n" +
			"Install one (Debian/Ubuntu: apt install gnome-keyring libsecret-tools; Fedora: dnf install gnome-keyring; or enable KeePassXC's Secret Service integration) and start it:\n" +
			"  printf %s \"$KEYRING_PASSWORD\" | gnome-keyring-daemon --unlock --components=secrets\n" +
			"(see docs/keychain.md)"
	case ErrLocked:
		switch goos {
		case "darwin":
			return "the login keychain is locked and cannot be unlocked from here (e.g. over SSH): run `security unlock-keychain ~/Library/Keychains/login.keychain-db` and try again"
		case "windows":
			return "the Credential Manager refused access: sign in to Windows interactively and try again"
		}
		return "the keyring is locked (or there is no default keyring) and no unlock prompt could be shown.\n" +
			"On a desktop, unlock the \"Login\" keyring in Passwords and Keys (seahorse) or log out and in again.\n" +
			"Without a desktop, unlock it by giving its password on stdin:\n" +
			"  printf %s \"$KEYRING_PASSWORD\" | gnome-keyring-daemon --replace --unlock --components=secrets\n" +
			"(see docs/keychain.md)"
	case ErrTimeout:
		if goos == "linux" {
			return "the Secret Service did not answer: an unlock prompt may be waiting on your desktop, or the provider is hung (try `pkill -HUP gnome-keyring-daemon` or restarting your session); see docs/keychain.md"
		}
		return "the keychain did not answer: a permission or unlock dialog may be waiting on your desktop; answer it and try again"
	case ErrUnsupported:
		return "onerecord keeps tokens only in the OS keychain (macOS Keychain, Windows Credential Manager, or a freedesktop Secret Service such as gnome-keyring or KeePassXC) and none is usable here; it never falls back to a plain file"
	}
	return ""
}

// classify turns what a backend returned into a sentinel kind (or nil).
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, keyring.ErrUnsupportedPlatform):
		return ErrUnsupported
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ErrTimeout
	}
	for _, k := range []error{ErrNotFound, ErrNoDBus, ErrNoProvider, ErrLocked, ErrTimeout, ErrUnsupported, ErrCorrupt} {
		if errors.Is(err, k) {
			return k
		}
	}
	return platformKind(err)
}

// redact removes any of secrets from err's text. A platform error that
// quotes what it was asked to store (none seen so far, but the macOS
// provider builds a command line from it) must not carry a token into logs.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}
