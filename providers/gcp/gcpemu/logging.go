package gcpemu

import (
	"cloud.google.com/go/logging/apiv2/loggingpb"
)

// loggingServer serves google.logging.v2.LoggingServiceV2.
type loggingServer struct {
	loggingpb.UnimplementedLoggingServiceV2Server
	e *Emulator
}
