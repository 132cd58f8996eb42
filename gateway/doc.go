// Package gateway is a reverse proxy from a public FHIR base to a FHIR
// server that knows nothing of SMART (HAPI, Medplum, Firely, a cloud FHIR
// service), for any Go program: put a middleware.Guard in front of it, and
// the Guard authorizes every request and verifies what the server answers.
//
//	proxy, err := gateway.New(gateway.Config{
//		Upstream: "http://10.0.0.5:8080/fhir",
//		BaseURL:  "https://ehr.example.org/fhir",
//	})
//	guard, err := middleware.New(middleware.Config{Authorize: middleware.AuthorizeConfig{
//		BaseURL:         "https://ehr.example.org/fhir",
//		UpstreamBaseURL: "http://10.0.0.5:8080/fhir",
//	}, …})
//	mux.Handle("/fhir/", guard.Handler(proxy))
//
// Requests at or below the public base path go to the same path below the
// upstream's base path, with X-Forwarded-For (the address of the peer;
// one sent by the client is not believed), X-Forwarded-Host and
// X-Forwarded-Proto (host and scheme of the public base) set, hop-by-hop
// headers removed, Accept-Encoding: identity, and without the client's
// Authorization header unless Config.ForwardAuthorization: the token was
// issued for the public base, not for the upstream.
//
// FHIR servers write their own address into responses (Location, a
// Bundle's fullUrl and paging links, absolute references). A client that
// followed them would reach the upstream without the Guard, so the proxy
// rewrites every occurrence of the upstream base URL into the public base,
// before the Guard sees the response: in every response header, and in
// every string of a JSON body (any body that parses as JSON, whatever its
// media type, and newline-delimited JSON under an ndjson media type),
// including narrative and member names. The rewriting copies everything
// else byte for byte (member order, white space, numbers, escapes) and
// fixes Content-Length. An occurrence is the upstream scheme and host
// (compared case-insensitively), its port (a default port written or
// not), its exact path, and then the end of the string or a character that
// cannot continue the path ("/", "?", "#", a quote, a space…): with the
// upstream "http://up/fhir", "http://UP:80/fhir/Patient/1" is rewritten
// and "http://up/fhir2" is not. JSON escapes ("http:\/\/up\/fhir") are
// read as what they encode.
//
// What cannot be rewritten is not passed on: a body larger than
// Config.MaxResponseBytes, a Content-Encoding other than gzip (the proxy
// asks for none and decodes gzip), and a text body that is not JSON (XML,
// HTML, plain text) but holds the upstream address are answered 502 with
// an OperationOutcome. Binary bodies (images, PDF, octet streams) pass
// unchanged: their bytes are the stored document, not the server's
// links. Informational responses (103 Early Hints) are not passed on.
//
// An unreachable upstream is a 502, a timeout (Transport's, or the
// request context's deadline) a 504, both with an OperationOutcome that
// does not name the upstream; the Logger gets the details. A request body
// that an http.MaxBytesReader in front of the proxy cuts is a 413.
//
// The Guard's AuthorizeConfig.UpstreamBaseURL should name the same
// upstream: references to it in request bodies (and in anything the
// rewriting missed) are then the server's own.
package gateway
