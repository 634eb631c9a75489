package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the connect command is written.
func newCmdConnect(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "connect",
		Short: "connect (not written yet)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("connect: not implemented yet")
		},
	}
}
