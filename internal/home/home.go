// Package home resolves where onerecord keeps its files: the store database,
// lock files and the installation id that scopes keychain entries. It creates
// directories 0700 and files 0600.
package home

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvHome overrides the default location, like the --home flag.
const EnvHome = "ONERECORD_HOME"

// Home is one onerecord home directory.
type Home struct {
	Dir string
}

// Resolve picks the home directory: flag value, then $ONERECORD_HOME, then the
// XDG data directory ($XDG_DATA_HOME/onerecord or ~/.local/share/onerecord on
// Unix; the user config dir elsewhere).
func Resolve(flagValue string) (*Home, error) {
	dir := flagValue
	if dir == "" {
		dir = os.Getenv(EnvHome)
	}
	if dir == "" {
		if x := os.Getenv("XDG_DATA_HOME"); x != "" {
			dir = filepath.Join(x, "onerecord")
		} else if h, err := os.UserHomeDir(); err == nil && filepath.Separator == '/' {
			dir = filepath.Join(h, ".local", "share", "onerecord")
		} else if c, err := os.UserConfigDir(); err == nil {
			dir = filepath.Join(c, "onerecord")
		} else {
			return nil, errors.New("cannot find a home directory for onerecord; set --home or ONERECORD_HOME")
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("home %q: %w", dir, err)
	}
	return &Home{Dir: abs}, nil
}

// Ensure creates the home directory with mode 0700 if it does not exist.
func (h *Home) Ensure() error {
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return fmt.Errorf("create home %s: %w", h.Dir, err)
	}
	return os.Chmod(h.Dir, 0o700)
}

// DBPath is the SQLite store.
func (h *Home) DBPath() string { return filepath.Join(h.Dir, "onerecord.db") }

// LockPath is the path of a named lock file, e.g. "sync" or "refresh-<portal>".
func (h *Home) LockPath(name string) string {
	return filepath.Join(h.Dir, "locks", name+".lock")
}

// InstallationID returns the random id of this home, creating it on first use.
// Keychain entries are scoped by it so that two homes never share tokens.
func (h *Home) InstallationID() (string, error) {
	if err := h.Ensure(); err != nil {
		return "", err
	}
	p := filepath.Join(h.Dir, "installation-id")
	if b, err := os.ReadFile(p); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	}
	var buf [12]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(buf[:])
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write installation id: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", fmt.Errorf("write installation id: %w", err)
	}
	// Another process may have won the race; read back what is on disk.
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
