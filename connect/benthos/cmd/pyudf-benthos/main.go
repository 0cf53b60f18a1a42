// Command pyudf-benthos is Benthos with the pyudf processor linked in, and
// Benthos' pure and io components (generate, bloblang, stdin, stdout, file,
// http_server, ...):
//
//	go run ./connect/benthos/cmd/pyudf-benthos -c pipeline.yaml
//	go run ./connect/benthos/cmd/pyudf-benthos list processors
package main

import (
	"context"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/pyudf/pyudf/connect/benthos"
)

func main() {
	service.RunCLI(context.Background())
}
