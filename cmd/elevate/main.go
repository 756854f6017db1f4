// Command elevate is the elevate daemon and CLI. All wiring lives in the app
// package; this file only hands over the process.
package main

import (
	"os"

	"github.com/elevatehq/elevate/app"
)

func main() {
	os.Exit(app.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
