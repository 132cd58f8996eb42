// Package deps pins the module's chosen dependencies while the packages that
// use them are being written. It is removed once every dependency is imported
// by real code.
package deps

import (
	_ "github.com/go-chi/chi/v5"
	_ "github.com/go-chi/jwtauth/v5"
	_ "github.com/google/cel-go/cel"
	_ "github.com/hashicorp/golang-lru/v2"
	_ "github.com/lestrrat-go/jwx/v2/jwk"
	_ "github.com/lestrrat-go/jwx/v2/jwt"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/singleflight"
)
