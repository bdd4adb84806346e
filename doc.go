// Package imaged is the domain of the images service: what an image is, the
// stores that hold its metadata and its bytes, the generators that make images
// from prompts, how callers are authenticated, and the one error type that the
// HTTP edge maps to the API envelope.
//
// The package holds types and interfaces only. Each dependency lives in a
// package of its own (sqlite, postgres, fsblob, s3, jwtauth, http, and one
// package per generation provider under provider/), and cmd/imaged wires them.
package imaged
