//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package keychain

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	dbus "github.com/godbus/dbus/v5"
)

// errNoSessionBusAddress is reported before go-keyring is called at all
// when there is no way to find a session bus. Without this check godbus
// would "autolaunch" one with dbus-launch: a new, empty bus with no Secret
// Service on it, and a dbus-daemon left running after onerecord exits.
var errNoSessionBusAddress = errors.New("DBUS_SESSION_BUS_ADDRESS is not set and no session bus socket was found")

// sessionBusFindable mirrors how godbus looks for the session bus
// (DBUS_SESSION_BUS_ADDRESS, then /run/user/<uid>/bus or dbus-session),
// minus the autolaunch.
func sessionBusFindable() error {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	dir := fmt.Sprintf("/run/user/%d", os.Getuid())
	for _, name := range []string{"bus", "dbus-session"} {
		if _, err := os.Stat(dir + "/" + name); err == nil {
			return nil
		}
	}
	return errNoSessionBusAddress
}

// platformKind classifies what go-keyring's Secret Service provider and
// godbus return.
func platformKind(err error) error {
	if errors.Is(err, errNoSessionBusAddress) {
		return ErrNoDBus
	}
	var de dbus.Error
	if errors.As(err, &de) {
		switch name := de.Name; {
		case name == "org.freedesktop.DBus.Error.ServiceUnknown",
			name == "org.freedesktop.DBus.Error.NameHasNoOwner",
			strings.HasPrefix(name, "org.freedesktop.DBus.Error.Spawn."):
			return ErrNoProvider
		case name == "org.freedesktop.Secret.Error.IsLocked",
			// No default collection to unlock: the same remedy (create or
			// unlock the login keyring).
			name == "org.freedesktop.Secret.Error.NoSuchObject":
			return ErrLocked
		case name == "org.freedesktop.DBus.Error.NoReply",
			name == "org.freedesktop.DBus.Error.Timeout",
			name == "org.freedesktop.DBus.Error.TimedOut":
			return ErrTimeout
		case name == "org.freedesktop.DBus.Error.Disconnected":
			return ErrNoDBus
		}
		return nil
	}
	// go-keyring reports a dismissed or impossible unlock prompt (no
	// desktop to show it on) with an untyped error.
	if strings.Contains(err.Error(), "failed to unlock") {
		return ErrLocked
	}
	// Failing to reach or authenticate to the bus itself.
	var opErr *net.OpError
	var errno syscall.Errno
	if errors.As(err, &opErr) || errors.As(err, &errno) ||
		errors.Is(err, io.EOF) || errors.Is(err, os.ErrNotExist) ||
		strings.HasPrefix(err.Error(), "dbus: ") {
		return ErrNoDBus
	}
	return nil
}
