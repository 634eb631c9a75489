package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the sync command is written.
func newCmdSync(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "sync",
		Short: "sync (not written yet)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("sync: not implemented yet")
		},
	}
}
