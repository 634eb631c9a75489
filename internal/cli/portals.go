package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the portals command is written.
func newCmdPortals(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "portals",
		Short: "portals (not written yet)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("portals: not implemented yet")
		},
	}
}
