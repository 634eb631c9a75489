package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the sandbox command is written.
func newCmdSandbox(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "sandbox",
		Short: "sandbox (not written yet)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("sandbox: not implemented yet")
		},
	}
}
