package celpolicy

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/signal"
	"time"
)

// WatchConfig says what makes a Policy reload its File by itself. The zero
// value watches nothing; Reload still reloads on demand.
type WatchConfig struct {
	// Signals that trigger a reload, typically syscall.SIGHUP. Empty: none.
	Signals []os.Signal
	// Interval is how often the file is checked for changes (its size,
	// modification time and content hash); a change is reloaded once the
	// file has stayed the same for one interval, so that a file being
	// written is not read half-way. 0 turns polling off.
	Interval time.Duration
	// OnReload, when set, is called after every reload attempt the watcher
	// makes, with its result (nil on success). The rules in force stay on
	// error.
	OnReload func(error)

	tick <-chan time.Time // tests: replaces the polling ticker
}

func (w *WatchConfig) enabled() bool { return len(w.Signals) > 0 || w.Interval > 0 || w.tick != nil }

// watcher reloads the policy on signals and file changes until Close.
type watcher struct {
	stop chan struct{}
	done chan struct{}
}

// startWatch starts the watcher goroutine. The file's state is read here,
// before New returns, so that any later change is seen as one.
func (p *Policy) startWatch(cfg WatchConfig) {
	w := &watcher{stop: make(chan struct{}), done: make(chan struct{})}
	var sigc chan os.Signal
	if len(cfg.Signals) > 0 {
		sigc = make(chan os.Signal, 1)
		signal.Notify(sigc, cfg.Signals...)
	}
	tick := cfg.tick
	var ticker *time.Ticker
	if tick == nil && cfg.Interval > 0 {
		ticker = time.NewTicker(cfg.Interval)
		tick = ticker.C
	}
	var loaded fileState // the version in force
	if tick != nil {
		loaded = statFile(p.cfg.File)
	}
	p.watch = w
	go func() {
		defer close(w.done)
		if sigc != nil {
			defer signal.Stop(sigc)
		}
		if ticker != nil {
			defer ticker.Stop()
		}
		p.watchLoop(cfg, w.stop, sigc, tick, loaded)
	}()
}

func (p *Policy) watchLoop(cfg WatchConfig, stop <-chan struct{}, sigc <-chan os.Signal, tick <-chan time.Time, loaded fileState) {
	var pending fileState // a change seen once
	reload := func() {
		err := p.Reload()
		if cfg.OnReload != nil {
			cfg.OnReload(err)
		}
	}
	for {
		select {
		case <-stop:
			return
		case <-sigc:
			if tick != nil {
				loaded, pending = statFile(p.cfg.File), fileState{}
			}
			reload()
		case <-tick:
			// Reload once a change has been stable for one interval.
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

// Close stops watching the policy file (Config.Watch) and waits until the
// watcher has stopped; a reload in progress finishes first. The Policy
// keeps evaluating with the rules in force, and Reload still works. Close
// may be called more than once, and on a Policy that watches nothing.
func (p *Policy) Close() {
	p.closeOnce.Do(func() {
		if w := p.watch; w != nil {
			close(w.stop)
			<-w.done
		}
	})
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
