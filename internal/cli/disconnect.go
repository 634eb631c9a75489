package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the disconnect command is written.
func newCmdDisconnect(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "disconnect",
		Short: "disconnect (not written yet)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("disconnect: not implemented yet")
		},
	}
}
