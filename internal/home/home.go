// Package home resolves where onerecord keeps its files: the store database,
// lock files and the installation id that scopes keychain entries. It creates
// directories 0700 and files 0600.
package home

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
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
//
// Two processes may start on a fresh home at once; they must agree on one
// id, or tokens saved under the losing one would be lost. The id is written
// to a private temporary file and then hard-linked into place, which fails
// when the file exists: the first writer wins and everyone reads its id.
func (h *Home) InstallationID() (string, error) {
	if err := h.Ensure(); err != nil {
		return "", err
	}
	p := filepath.Join(h.Dir, "installation-id")
	if id, err := readID(p); err == nil && id != "" {
		return id, nil
	}
	var buf [12]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(buf[:])
	if err := writeNew(p, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("write installation id: %w", err)
	}
	got, err := readID(p)
	if err != nil {
		return "", fmt.Errorf("read installation id: %w", err)
	}
	if got == "" {
		return "", fmt.Errorf("read installation id: %s is empty", p)
	}
	return got, nil
}

func readID(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// writeNew creates p (0600) with content unless it exists, never exposing
// a partly written file.
func writeNew(p string, content []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".installation-id-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		f.Close()
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	err = os.Link(tmp, p)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		return nil
	}
	// A file system without hard links: rename, unless the id appeared.
	if _, serr := os.Stat(p); serr == nil {
		return nil
	}
	return os.Rename(tmp, p)
}
