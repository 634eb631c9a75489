// Command onerecord keeps a person's health records from all of their patient
// portals in one private store on their own machine.
package main

import (
	"os"

	"github.com/onerecord/onerecord/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
