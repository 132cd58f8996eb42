package demo_test

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/fhirguard/fhirguard/examples/internal/demo"
)

// Run starts the demo server on a router of your choice; this one is the
// standard library's. Here it runs on a free loopback port, makes one
// request with the patient token it printed and stops.
func ExampleRun() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	router := func(app *demo.App) http.Handler {
		mux := http.NewServeMux()
		fhir := app.Guard.Handler(app.FHIR) // fhirguard in front of the FHIR server
		mux.Handle(app.BasePath, fhir)
		mux.Handle(app.BasePath+"/", fhir)
		mux.Handle(demo.AuthPath+"/", app.Auth) // the embedded test authorization server
		return mux
	}
	ctx, stop := context.WithCancel(context.Background())
	err = demo.Run(ctx, nil, router, demo.Options{Listener: ln, Ready: func(s *demo.Server) {
		defer stop()
		for _, path := range []string{"/Patient/123", "/Patient/456"} {
			req, _ := http.NewRequest("GET", s.BaseURL()+path, nil)
			req.Header.Set("Authorization", "Bearer "+s.PatientToken())
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				fmt.Println(err)
				return
			}
			res.Body.Close()
			fmt.Println(path, res.StatusCode)
		}
	}})
	fmt.Println("stopped:", err)
	// Output:
	// /Patient/123 200
	// /Patient/456 404
	// stopped: <nil>
}
