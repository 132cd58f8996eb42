package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// minRefreshInterval is the shortest RemoteConfig.RefreshInterval
// accepted; tests lower it.
var minRefreshInterval = time.Second

// RemoteConfig configures NewRemote.
type RemoteConfig struct {
	// Issuer is the authorization server's issuer URL; its
	// /.well-known/openid-configuration is fetched. Required.
	Issuer string
	// Local holds the local settings: any member that should win over the
	// authorization server's values, and the capabilities to advertise.
	// Without capabilities (or with a nil Local) they are derived from the
	// server's metadata. See Derive.
	Local *Document
	// Strict refuses an authorization server whose metadata does not
	// support everything asked for or offers a feature in a form SMART
	// cannot use (see DeriveConfig.Strict): NewRemote and Refresh then
	// fail with a *ValidationError. Without Strict such findings are
	// warnings (Warnings, OnWarnings) and the document leaves out what the
	// server does not support.
	Strict bool
	// OnWarnings, when set, receives the warnings of the document built
	// by NewRemote (when there are any, before NewRemote returns), and
	// those of a refreshed document when they differ from the previous
	// ones (an empty list then says the previous ones are gone). It runs
	// on the goroutine of NewRemote or Refresh. Log them: they say what in
	// the server's metadata is imperfect for SMART.
	OnWarnings func(Problems)
	// Resource is the FHIR base URL (middleware's Authorize.BaseURL), the
	// resource of the RFC 9728 metadata the Remote serves
	// (ProtectedResourceHandler), which names Issuer as the authorization
	// server. Required.
	Resource string
	// Fetch configures each fetch (client, timeout, size cap, https).
	Fetch FetchConfig
	// Handler configures the HTTP handlers.
	Handler HandlerConfig
	// RefreshInterval, when positive, refetches the configuration in the
	// background at that interval until Close (call it, or the goroutine
	// lives on). A failed refresh keeps the previous document. At least
	// one second; zero fetches only once, in NewRemote.
	RefreshInterval time.Duration
	// OnRefresh, when set, is called after every background refresh with
	// its result (nil on success). It runs on the refresh goroutine.
	OnRefresh func(error)
}

// Remote serves a SMART configuration built from an authorization
// server's OpenID configuration and local settings, so that a FHIR server
// in front of an existing OAuth server needs only its issuer URL (and its
// own FHIR base URL). The configuration is fetched once by NewRemote and,
// optionally, refreshed in the background (Close stops it).
//
// Both handlers are always set: wire them as
//
//	middleware.Config{
//		SMARTConfiguration: remote.Handler(),
//		ProtectedResource:  remote.ProtectedResourceHandler(),
//		...
//	}
type Remote struct {
	cfg       RemoteConfig
	handler   *Handler
	protected *ProtectedResourceHandler
	last      atomic.Pointer[OpenIDConfiguration]
	warnings  atomic.Pointer[Problems]

	mu       sync.Mutex // serialises Refresh
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewRemote fetches the OpenID configuration of cfg.Issuer (bounded by
// ctx and cfg.Fetch.Timeout), builds the SMART configuration with Derive,
// and starts the background refresh when cfg.RefreshInterval is positive.
// A failed fetch is a *FetchError; a document that cannot be served (or,
// with cfg.Strict, imperfect metadata) a *ValidationError. Warnings do not
// stop it: read them with Warnings or cfg.OnWarnings.
func NewRemote(ctx context.Context, cfg RemoteConfig) (*Remote, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("discovery: RemoteConfig.Issuer is required")
	}
	if cfg.Resource == "" {
		return nil, errors.New("discovery: RemoteConfig.Resource (the FHIR base URL) is required")
	}
	if cfg.RefreshInterval < 0 || (cfg.RefreshInterval > 0 && cfg.RefreshInterval < minRefreshInterval) {
		return nil, fmt.Errorf("discovery: RemoteConfig.RefreshInterval below %v", minRefreshInterval)
	}
	if err := checkConfig(cfg.Handler); err != nil {
		return nil, err
	}
	r := &Remote{cfg: cfg}
	oc, doc, prm, warnings, err := r.build(ctx)
	if err != nil {
		return nil, err
	}
	if r.handler, err = NewHandler(doc, cfg.Handler); err != nil {
		return nil, err
	}
	if r.protected, err = NewProtectedResourceHandler(prm, cfg.Handler); err != nil {
		return nil, err
	}
	r.last.Store(oc)
	r.warnings.Store(&warnings)
	if len(warnings) > 0 && cfg.OnWarnings != nil {
		cfg.OnWarnings(slices.Clone(warnings))
	}
	if cfg.RefreshInterval > 0 {
		bg, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		r.done = make(chan struct{})
		go r.loop(bg)
	}
	return r, nil
}

func (r *Remote) build(ctx context.Context) (*OpenIDConfiguration, *Document, *ProtectedResourceMetadata, Problems, error) {
	oc, err := FetchOpenIDConfiguration(ctx, r.cfg.Issuer, r.cfg.Fetch)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	doc, warnings, err := Derive(oc, DeriveConfig{Local: r.cfg.Local, Strict: r.cfg.Strict})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	prm := doc.ProtectedResource(r.cfg.Resource, oc.Issuer)
	if err := prm.Validate().Err(); err != nil {
		return nil, nil, nil, nil, err
	}
	return oc, doc, prm, warnings, nil
}

func (r *Remote) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := r.Refresh(ctx)
			if ctx.Err() != nil {
				return
			}
			if r.cfg.OnRefresh != nil {
				r.cfg.OnRefresh(err)
			}
		}
	}
}

// Refresh fetches the configuration again and, when it is valid, serves it
// from now on; on failure the previous document stays and the error says
// why (*FetchError or *ValidationError).
func (r *Remote) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	oc, doc, prm, warnings, err := r.build(ctx)
	if err != nil {
		return err
	}
	if err := r.handler.Update(doc); err != nil {
		return err
	}
	if err := r.protected.Update(prm); err != nil {
		return err
	}
	r.last.Store(oc)
	if prev := r.warnings.Swap(&warnings); !sameProblems(*prev, warnings) && r.cfg.OnWarnings != nil {
		r.cfg.OnWarnings(slices.Clone(warnings))
	}
	return nil
}

func sameProblems(a, b Problems) bool {
	return slices.EqualFunc(a, b, func(x, y Problem) bool { return x.Error() == y.Error() })
}

// Close ends the background refresh and waits for it to finish; the
// handlers keep serving the last document. It is safe to call more than
// once, and when no refresh runs.
func (r *Remote) Close() {
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
	})
}

// Handler returns the handler of the SMART configuration, for
// middleware.Config.SMARTConfiguration. It is never nil.
func (r *Remote) Handler() *Handler { return r.handler }

// ProtectedResourceHandler returns the handler of the RFC 9728 metadata of
// RemoteConfig.Resource, for middleware.Config.ProtectedResource. It is
// never nil.
func (r *Remote) ProtectedResourceHandler() *ProtectedResourceHandler { return r.protected }

// Warnings returns the warnings of the document being served: what in the
// authorization server's metadata is imperfect for SMART and was left out
// (see Derive), and the warnings of Document.Validate.
func (r *Remote) Warnings() Problems {
	return slices.Clone(*r.warnings.Load())
}

// OpenIDConfiguration returns the last OpenID configuration fetched
// successfully.
func (r *Remote) OpenIDConfiguration() *OpenIDConfiguration {
	return r.last.Load().clone()
}
