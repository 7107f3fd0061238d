package grpc

import "google.golang.org/grpc/codes"

// numCodes is the number of gRPC status codes, OK (0) to UNAUTHENTICATED
// (16).
const numCodes = 17

// codeNames are the canonical names of the gRPC codes, as the error body
// and the metrics' code label write them.
var codeNames = [numCodes]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// httpStatuses map the gRPC codes to HTTP statuses, the table of
// grpc-gateway (runtime.HTTPStatusFromCode).
var httpStatuses = [numCodes]int{
	codes.OK:                 200,
	codes.Canceled:           499,
	codes.Unknown:            500,
	codes.InvalidArgument:    400,
	codes.DeadlineExceeded:   504,
	codes.NotFound:           404,
	codes.AlreadyExists:      409,
	codes.PermissionDenied:   403,
	codes.ResourceExhausted:  429,
	codes.FailedPrecondition: 400,
	codes.Aborted:            409,
	codes.OutOfRange:         400,
	codes.Unimplemented:      501,
	codes.Internal:           500,
	codes.Unavailable:        503,
	codes.DataLoss:           500,
	codes.Unauthenticated:    401,
}

// HTTPStatus returns the HTTP status of gRPC code c; 500 for a code
// outside the standard ones.
func HTTPStatus(c codes.Code) int {
	if c < numCodes {
		return httpStatuses[c]
	}
	return 500
}

// codeName returns c's canonical name, UNKNOWN for a code outside the
// standard ones.
func codeName(c codes.Code) string {
	if c < numCodes {
		return codeNames[c]
	}
	return codeNames[codes.Unknown]
}
