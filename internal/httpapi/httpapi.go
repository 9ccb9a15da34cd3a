// Package httpapi serves the agent's read-only endpoints (/metrics, /healthz and any
// extra read-only handlers) and, on a separate localhost listener, the admin endpoints.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Server is a started HTTP listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen binds addr first, so that a port conflict is reported before anything is
// attached. flag names the flag that set addr, for the error message.
func Listen(addr, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("cannot listen on %s: address already in use: choose another with %s", addr, flag)
		}
		return nil, fmt.Errorf("cannot listen on %s: %v: fix %s", addr, err, flag)
	}
	return ln, nil
}

// ReadOnly returns a handler that refuses every method but GET and HEAD.
func ReadOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only endpoint", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// MetricsMux builds the public mux: /metrics (Prometheus text, OpenMetrics on
// negotiation), /healthz, plus extra read-only handlers by path.
func MetricsMux(metrics http.Handler, healthy func() error, extra map[string]http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", ReadOnly(metrics))
	mux.Handle("/healthz", ReadOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if healthy != nil {
			if err := healthy(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})))
	for path, h := range extra {
		mux.Handle(path, ReadOnly(h))
	}
	return mux
}

// Serve starts serving h on ln in the background.
func Serve(ln net.Listener, h http.Handler) *Server {
	s := &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close shuts the server down within a second.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// StagesHandler serves PUT /stages with body "on" or "off" (also 1/0, true/false) and
// GET /stages. Every other method is refused.
func StagesHandler(set func(bool) error, get func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
		case http.MethodPut:
			buf := make([]byte, 16)
			n, _ := r.Body.Read(buf)
			on, ok := ParseSwitch(string(buf[:n]))
			if !ok {
				http.Error(w, "body must be on or off", http.StatusBadRequest)
				return
			}
			if err := set(on); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		default:
			w.Header().Set("Allow", "GET, PUT")
			http.Error(w, "use PUT with body on|off", http.StatusMethodNotAllowed)
			return
		}
		if get() {
			fmt.Fprintln(w, "on")
		} else {
			fmt.Fprintln(w, "off")
		}
	})
}

// ParseSwitch accepts the seed's truthy set (1, true, True, TRUE, yes, on) and its
// falsy counterparts.
func ParseSwitch(s string) (on, ok bool) {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	switch s {
	case "1", "true", "True", "TRUE", "yes", "on":
		return true, true
	case "0", "false", "False", "FALSE", "no", "off", "":
		return false, true
	}
	return false, false
}
