package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Placeholder until the demo command is written.
func newCmdDemo(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "demo (not written yet)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("demo: not implemented yet")
		},
	}
}
