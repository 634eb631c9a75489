//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package keychain

import (
	"errors"
	"net"
	"os"
	"syscall"

	dbus "github.com/godbus/dbus/v5"
)

var platformClassifyCases = []struct {
	err  error
	kind error
}{
	{errNoSessionBusAddress, ErrNoDBus},
	{&net.OpError{Op: "dial", Net: "unix", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ENOENT}}, ErrNoDBus},
	{errors.New("dbus: authentication failed"), ErrNoDBus},
	{dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Body: []any{"The name org.freedesktop.secrets was not provided by any .service files"}}, ErrNoProvider},
	{dbus.Error{Name: "org.freedesktop.DBus.Error.NameHasNoOwner"}, ErrNoProvider},
	{dbus.Error{Name: "org.freedesktop.DBus.Error.Spawn.ChildExited"}, ErrNoProvider},
	{dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked"}, ErrLocked},
	{dbus.Error{Name: "org.freedesktop.Secret.Error.NoSuchObject"}, ErrLocked},
	{errors.New("failed to unlock correct collection '/org/freedesktop/secrets/collection/login'"), ErrLocked},
	{dbus.Error{Name: "org.freedesktop.DBus.Error.NoReply"}, ErrTimeout},
	{dbus.Error{Name: "org.freedesktop.DBus.Error.AccessDenied"}, nil},
}
