package middleware

import "sync"

// decisionLink is how a request context answers DecisionFromContext
// without holding a Decision of its own. Authorize makes its Decision in
// the pooled exchange and attaches it here while it serves the request; the
// Decision is published (kept for good: not recycled when the request ends)
// the first time anything outside Authorize may keep a pointer to it: the
// handler's DecisionFromContext, a policy, an OnDecision hook. A request
// nobody asks about allocates no Decision.
//
// A context kept after the request answers with the Decision when it was
// published during the request, and with nothing otherwise (its Decision
// has been recycled).
type decisionLink struct {
	mu        sync.Mutex
	d         *Decision // the Decision attached or published, nil when none
	published bool      // d is kept for good
	used      bool      // Authorize attached a Decision once: it never attaches another
}

type linkKey struct{}

// attach records d as the Decision of the link's request. It reports false
// when the link already served a request (a context reused for a second
// one); Authorize then carries its Decision in a context of its own.
// Nothing else can reach a context before Authorize hands it on, but a
// context reused across requests may be shared: the lock covers that.
func (l *decisionLink) attach(d *Decision) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.used {
		return false
	}
	l.d, l.used = d, true
	return true
}

// publish returns the link's Decision, kept for good from now on (nil when
// none is attached or published).
func (l *decisionLink) publish() *Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.d != nil {
		l.published = true
	}
	return l.d
}

// detach ends the request: it reports whether d was published. An
// unpublished d is dropped from the link, which answers nothing from then
// on, and may be recycled.
func (l *decisionLink) detach(d *Decision) (published bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.d != d {
		return false
	}
	if !l.published {
		l.d = nil
	}
	return l.published
}

// value answers a context's Value(decisionKey{}): the published Decision,
// or nil (an untyped nil, as Value answers for a missing key).
func (l *decisionLink) value() any {
	if d := l.publish(); d != nil {
		return d
	}
	return nil
}
