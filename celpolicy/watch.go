package celpolicy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// WatchConfig says what makes Watch reload the policy file.
type WatchConfig struct {
	// Signals that trigger a reload. nil means SIGHUP; an empty non-nil
	// slice means none.
	Signals []os.Signal
	// Interval is how often the file is checked for changes (its size,
	// modification time and content hash); 0 turns polling off.
	Interval time.Duration
	// OnReload, when set, is called after every reload attempt with its
	// result (nil on success). The old policies stay in force on error.
	OnReload func(error)
}

// Watch reloads the policy file on the configured signals and, when
// polling, when the file has changed and then stayed the same for one
// interval, until ctx is done; it then returns ctx.Err(). Each reload is atomic: a file that fails to read or compile
// leaves the policies in force and is logged (and given to OnReload). Run
// it in its own goroutine. A Policy without a file has nothing to watch and
// Watch returns an error at once.
func (p *Policy) Watch(ctx context.Context, cfg WatchConfig) error {
	if p.cfg.File == "" {
		return errors.New("celpolicy: Watch needs a policy File")
	}
	sigs := cfg.Signals
	if sigs == nil {
		sigs = []os.Signal{syscall.SIGHUP}
	}
	var sigc chan os.Signal
	if len(sigs) > 0 {
		sigc = make(chan os.Signal, 1)
		signal.Notify(sigc, sigs...)
		defer signal.Stop(sigc)
	}
	var tick <-chan time.Time
	var loaded, pending fileState // the version in force; a change seen once
	if cfg.Interval > 0 {
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		tick = t.C
		loaded = statFile(p.cfg.File)
	}
	reload := func() {
		err := p.Reload()
		if cfg.OnReload != nil {
			cfg.OnReload(err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sigc:
			if tick != nil {
				loaded, pending = statFile(p.cfg.File), fileState{}
			}
			reload()
		case <-tick:
			// Reload once a change has been stable for one interval, so
			// that a file being written is not read half-way.
			now := statFile(p.cfg.File)
			switch {
			case !now.changed(loaded):
				pending = fileState{}
			case pending.ok && !now.changed(pending):
				loaded, pending = now, fileState{}
				reload()
			default:
				pending = now
			}
		}
	}
}

// fileState identifies a version of the policy file. The content hash
// catches rewrites within the file system's time granularity.
type fileState struct {
	ok      bool
	size    int64
	modTime time.Time
	sum     [sha256.Size]byte
}

func statFile(name string) fileState {
	fi, err := os.Stat(name)
	if err != nil {
		return fileState{}
	}
	st := fileState{ok: true, size: fi.Size(), modTime: fi.ModTime()}
	data, err := os.ReadFile(name)
	if err != nil {
		return fileState{}
	}
	st.sum = sha256.Sum256(data)
	return st
}

func (s fileState) changed(prev fileState) bool {
	if !s.ok {
		// A missing file (being replaced) is not a change; wait for it.
		return false
	}
	return !prev.ok || s.size != prev.size || !s.modTime.Equal(prev.modTime) || !bytes.Equal(s.sum[:], prev.sum[:])
}
