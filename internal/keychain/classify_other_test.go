//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package keychain

var platformClassifyCases []struct {
	err  error
	kind error
}
