package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the status command is written.
func newCmdStatus(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "status (not written yet)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("status: not implemented yet")
		},
	}
}
