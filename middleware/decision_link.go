package middleware

import "sync/atomic"

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
//
// The state moves one way: linkFree → linkTaking → linkAttached →
// (linkPublished →) linkDone, or linkAttached → linkDone directly when
// nobody asked. d is written only in linkTaking, by the one attach that
// got there, and read only in linkAttached or linkPublished, after an
// atomic load that saw one of them (the store of that state orders the
// write of d before the read).
type decisionLink struct {
	state atomic.Uint32
	d     *Decision
}

// States of a decisionLink.
const (
	linkFree      uint32 = iota // no Decision yet
	linkTaking                  // an attach is writing d
	linkAttached                // d is the request's, not published
	linkPublished               // d is the request's and kept for good
	linkDone                    // the request ended unpublished, or the link was reused
)

type linkKey struct{}

// attach records d as the Decision of the link's request. It reports false
// when the link already served a request (a context reused for a second
// one); Authorize then carries its Decision in a context of its own.
func (l *decisionLink) attach(d *Decision) bool {
	if !l.state.CompareAndSwap(linkFree, linkTaking) {
		return false
	}
	l.d = d
	l.state.Store(linkAttached)
	return true
}

// publish returns the link's Decision, kept for good from now on (nil when
// none is attached or published).
func (l *decisionLink) publish() *Decision {
	for {
		switch l.state.Load() {
		case linkPublished:
			return l.d
		case linkAttached:
			if l.state.CompareAndSwap(linkAttached, linkPublished) {
				return l.d
			}
			// The request ended or another goroutine published: look again.
		default:
			return nil
		}
	}
}

// detach ends the request whose Decision d is: it reports whether d was
// published. An unpublished d is no longer answered by the link, and may be
// recycled.
func (l *decisionLink) detach(d *Decision) (published bool) {
	if l.state.CompareAndSwap(linkAttached, linkDone) {
		return false
	}
	return l.state.Load() == linkPublished && l.d == d
}

// value answers a context's Value(decisionKey{}): the published Decision,
// or nil (an untyped nil, as Value answers for a missing key).
func (l *decisionLink) value() any {
	if d := l.publish(); d != nil {
		return d
	}
	return nil
}
