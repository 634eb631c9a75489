// Package term holds the standard streams of a command and what they are
// connected to: whether stdin/stdout/stderr are terminals, whether colour is
// wanted (NO_COLOR turns it off), and a simple yes/no prompt. Commands write
// data to Out and messages for people to ErrOut.
package term

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	xterm "golang.org/x/term"
)

// IOStreams is what a command reads from and writes to.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	InTTY, OutTTY, ErrTTY bool
	colour                bool // colour on Out
	errColour             bool // colour on ErrOut
	width                 int  // columns of the terminal on Out (0: not a terminal, or unknown)
}

// System returns the process's streams, detecting terminals and NO_COLOR.
func System() *IOStreams {
	s := &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		InTTY:  xterm.IsTerminal(int(os.Stdin.Fd())),
		OutTTY: xterm.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY: xterm.IsTerminal(int(os.Stderr.Fd())),
	}
	_, noColour := os.LookupEnv("NO_COLOR")
	if s.OutTTY {
		if w, _, err := xterm.GetSize(int(os.Stdout.Fd())); err == nil {
			s.width = w
		}
	}
	dumb := os.Getenv("TERM") == "dumb"
	s.colour = s.OutTTY && !noColour && !dumb
	s.errColour = s.ErrTTY && !noColour && !dumb
	return s
}

// Test returns streams backed by buffers, for tests: (streams, stdin, stdout, stderr).
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetTTY marks all three streams as terminals (or not), for tests.
func (s *IOStreams) SetTTY(tty bool) {
	s.InTTY, s.OutTTY, s.ErrTTY = tty, tty, tty
}

// SetColour turns colour on or off (on both Out and ErrOut), for tests.
func (s *IOStreams) SetColour(on bool) { s.colour, s.errColour = on, on }

// SetWidth sets the terminal width of Out, for tests.
func (s *IOStreams) SetWidth(columns int) { s.width = columns }

// Width is how many columns the terminal on Out has, or 0 when Out is not a
// terminal (then nothing should be cut to fit).
func (s *IOStreams) Width() int { return s.width }

// ColourEnabled reports whether Out may carry colour escape codes.
func (s *IOStreams) ColourEnabled() bool { return s.colour }

// CanPrompt reports whether the person can be asked a question.
func (s *IOStreams) CanPrompt() bool { return s.InTTY && s.ErrTTY }

// Colour wraps text in an ANSI colour when colour is enabled.
// Known names: red, green, yellow, cyan, bold, dim.
func (s *IOStreams) Colour(name, text string) string {
	return paint(s.colour, name, text)
}

// ErrColour is Colour for text written to ErrOut: it depends on whether
// ErrOut is a terminal, not Out (`onerecord status 2>log` keeps log plain).
func (s *IOStreams) ErrColour(name, text string) string {
	return paint(s.errColour, name, text)
}

func paint(on bool, name, text string) string {
	if !on {
		return text
	}
	codes := map[string]string{"red": "31", "green": "32", "yellow": "33", "cyan": "36", "bold": "1", "dim": "2"}
	c, ok := codes[name]
	if !ok {
		return text
	}
	return "\x1b[" + c + "m" + text + "\x1b[0m"
}

// Confirm asks question on ErrOut and reads a yes/no answer from In. An empty
// answer means def. It returns an error when In is closed.
func (s *IOStreams) Confirm(question string, def bool) (bool, error) {
	suffix := " [y/N] "
	if def {
		suffix = " [Y/n] "
	}
	fmt.Fprint(s.ErrOut, question+suffix)
	line, err := bufio.NewReader(s.In).ReadString('\n')
	if err != nil && line == "" {
		return false, fmt.Errorf("no answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "":
		return def, nil
	case "y", "yes":
		return true, nil
	default:
		return false, nil
	}
}
