package server

import (
	_ "embed"
)

// openAPIDocument is the OpenAPI 3.0 description of the API, served at
// GET /v1/openapi.json. docs/openapi.json is the same file; a test keeps
// them identical and checks that every route is described.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.0 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }
