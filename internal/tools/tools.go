//go:build tools

// Package tools pins the project's dependencies while the code that uses them is written.
package tools

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/cli/browser"
	_ "github.com/creack/pty"
	_ "github.com/gofrs/flock"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/samply/golang-fhir-models/fhir-models/fhir"
	_ "github.com/spf13/cobra"
	_ "github.com/vbauerster/mpb/v8"
	_ "github.com/zalando/go-keyring"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/term"
	_ "modernc.org/sqlite"
)
