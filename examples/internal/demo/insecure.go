package demo

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
)

// insecureSetting is something the demo turned on that weakens security:
// one item of the banner's INSECURE warning.
type insecureSetting struct {
	setting string // its name
	// guardField is the middleware.AuthConfig field whose start-up warning
	// the Guard would log, if any.
	guardField string
	what       string // what it allows
	off        string // the flags that turn it off
}

// quietInsecure is the Guard's log handler: while hold is set (during
// middleware.New), it drops the Guard's warnings about the Insecure…
// settings the banner's INSECURE warning lists, so that the warning is
// said once. A warning naming any other Insecure… setting passes, as does
// everything once released.
type quietInsecure struct {
	slog.Handler
	hold   *atomic.Bool
	listed map[string]bool
}

func newQuietInsecure(h slog.Handler, on []insecureSetting) *quietInsecure {
	q := &quietInsecure{Handler: h, hold: new(atomic.Bool), listed: map[string]bool{}}
	q.hold.Store(true)
	for _, in := range on {
		if in.guardField != "" {
			q.listed[in.guardField] = true
		}
	}
	return q
}

// release lets every record pass from now on.
func (q *quietInsecure) release() { q.hold.Store(false) }

func (q *quietInsecure) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && q.hold.Load() && q.covers(r.Message) {
		return nil
	}
	return q.Handler.Handle(ctx, r)
}

// covers reports whether msg names at least one Insecure… identifier and
// each of them is listed.
func (q *quietInsecure) covers(msg string) bool {
	named := false
	for rest := msg; ; {
		i := strings.Index(rest, "Insecure")
		if i < 0 {
			return named
		}
		if i > 0 && isIdentByte(rest[i-1]) { // inside a longer word
			rest = rest[i+len("Insecure"):]
			continue
		}
		j := i
		for j < len(rest) && isIdentByte(rest[j]) {
			j++
		}
		if !q.listed[rest[i:j]] {
			return false
		}
		named = true
		rest = rest[j:]
	}
}

func isIdentByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func (q *quietInsecure) WithAttrs(as []slog.Attr) slog.Handler {
	return &quietInsecure{Handler: q.Handler.WithAttrs(as), hold: q.hold, listed: q.listed}
}

func (q *quietInsecure) WithGroup(name string) slog.Handler {
	return &quietInsecure{Handler: q.Handler.WithGroup(name), hold: q.hold, listed: q.listed}
}

// isHTTP reports whether raw is a plain-HTTP URL.
func isHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && strings.EqualFold(u.Scheme, "http")
}
