package server

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/kvgo/kvgo/engine/sched"
)

// ServeOptions tune Serve and ListenAndServe.
type ServeOptions struct {
	// DrainTimeout is how long requests running or queued may take to
	// finish once the context ends; what is left then is aborted (0:
	// abort at once).
	DrainTimeout time.Duration
	// ErrorLog logs the HTTP server's own errors (nil: the log package's
	// standard logger).
	ErrorLog *log.Logger
	// Listening, if set, is told the listener's address before the first
	// request is served (with port 0 the system picks a free one).
	Listening func(addr net.Addr)
	// Draining, if set, is told the scheduler's figures (running and
	// queued requests) when the context ends, before the drain starts.
	Draining func(st sched.Stats)
}

// abortGrace is how long the handlers of aborted requests have to write
// their ending (a stream's error event and [DONE]) after the drain
// timeout.
const abortGrace = 2 * time.Second

// ListenAndServe listens on the TCP address addr and serves the API there
// until ctx ends (see Serve).
func (s *Server) ListenAndServe(ctx context.Context, addr string, opt ServeOptions) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln, opt)
}

// Serve serves the API on ln until ctx ends, then drains: /health turns
// 503 "draining" and new generation requests get 503, while requests
// running or queued go on for up to opt.DrainTimeout; the listener stays
// open meanwhile, so that health checks see the drain rather than a
// refused connection. Then the scheduler aborts what is left
// (ErrShutdown: a stream ends with an error event and [DONE]), the
// handlers get a moment to write that, and the listener closes. Serve
// returns nil after a drain, or the error that stopped serving before it.
func (s *Server) Serve(ctx context.Context, ln net.Listener, opt ServeOptions) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          opt.ErrorLog,
	}
	if opt.Listening != nil {
		opt.Listening(ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	if opt.Draining != nil {
		opt.Draining(s.sch.Stats())
	}
	s.Drain()
	if !s.waitGenerations(time.Now().Add(opt.DrainTimeout)) {
		// Time is up: end what still runs. Streams get an error event and
		// [DONE]; give their handlers a moment to write them.
		s.sch.Abort(sched.ErrShutdown)
		s.waitGenerations(time.Now().Add(abortGrace))
	}
	fctx, fcancel := context.WithTimeout(context.Background(), abortGrace)
	defer fcancel()
	if err := hs.Shutdown(fctx); err != nil {
		hs.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// waitGenerations waits until no generation request is in flight, or
// until the deadline; it reports whether none is.
func (s *Server) waitGenerations(deadline time.Time) bool {
	for s.generating.Load() > 0 {
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
