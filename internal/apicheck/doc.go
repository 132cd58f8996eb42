// Package apicheck holds the tests that keep fhirguard's public API visible
// and small: the exported API of every public package is written to
// api/<package>.txt at the module root and compared in every test run, so a
// change to the API shows up in review as a change to those files; the
// number of exported names has a ceiling; and every public package has
// runnable examples whose output go test checks.
//
// After an intended API change, regenerate the files with
//
//	go test ./internal/apicheck -run TestAPI -update
package apicheck
