package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/bastion-ttl/bastion-ttl/internal/controlapi"
)

// The control endpoint's server side (package controlapi is the contract):
// GET /status from the live state, POST /extend's request checks, then the
// extension path (extension.go).

// serveControl serves the control endpoint on BASTION_CONTROL_ADDR until
// ctx ends. It never holds up the sidecar: a port it cannot bind is
// logged, and watch goes on.
func (w *watcher) serveControl(ctx context.Context, state *live) {
	if w.cfg.ControlAddr == controlOff {
		return
	}
	l, err := net.Listen("tcp", w.cfg.ControlAddr)
	if err != nil {
		w.log.Error("control endpoint not served; the bastion still stops on time", "addr", w.cfg.ControlAddr, "err", err.Error())
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+controlapi.StatusPath, func(rw http.ResponseWriter, r *http.Request) {
		s, ok := state.status(w.clock.Now(), w.cfg.WarnBefore)
		if !ok {
			answer(rw, http.StatusServiceUnavailable, controlapi.ErrorBody{Code: controlapi.CodeUnavailable, Error: "the start time is not known yet"})
			return
		}
		if w.cfg.IdleTimeout == 0 {
			// No sampling without an idle timeout: count now, for the people asking.
			sample, _ := w.countSessions()
			s.Connections = ptr(sample.Sessions)
		}
		answer(rw, http.StatusOK, s)
	})
	mux.HandleFunc("POST "+controlapi.ExtendPath, func(rw http.ResponseWriter, r *http.Request) {
		status, body := w.serveExtend(ctx, r, state)
		answer(rw, status, body)
	})
	srv := &http.Server{Handler: onlyLocal(mux), ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: controlapi.ExtendAnswerTimeout}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("control endpoint stopped", "err", err.Error())
		}
	}()
	w.log.Info("control endpoint listening", "addr", l.Addr().String())
}

// onlyLocal answers 403 to every request controlapi.CheckLocal refuses,
// before any route sees it: a route added later is covered too.
func onlyLocal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if err := controlapi.CheckLocal(r); err != nil {
			answer(rw, http.StatusForbidden, controlapi.ErrorBody{Code: controlapi.CodeForbidden, Error: err.Error()})
			return
		}
		next.ServeHTTP(rw, r)
	})
}

func answer(rw http.ResponseWriter, status int, body any) {
	rw.Header().Set("Content-Type", controlapi.ContentType)
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(body)
}

func fail(status int, code controlapi.Code, format string, args ...any) (int, any) {
	return status, controlapi.ErrorBody{Code: code, Error: fmt.Sprintf(format, args...)}
}

// serveExtend serves POST /extend {"by": "30m"}: it checks the request,
// then asks for the extension (extension.go). Anyone on the box may ask;
// only the API's cap, which the box cannot lift, bounds the answer.
func (w *watcher) serveExtend(ctx context.Context, r *http.Request, state *live) (int, any) {
	// A browser's form post cannot send this type without a CORS preflight,
	// which the endpoint never answers.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != controlapi.ContentType {
		return fail(http.StatusUnsupportedMediaType, controlapi.CodeBadRequest, `send Content-Type: application/json and a body such as {"by": "30m"}`)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, controlapi.MaxExtendBody+1))
	if err != nil || len(body) > controlapi.MaxExtendBody {
		return fail(http.StatusRequestEntityTooLarge, controlapi.CodeTooLarge, "the body is larger than %d bytes", controlapi.MaxExtendBody)
	}
	by, err := controlapi.DecodeExtendRequest(body)
	if err != nil {
		return fail(http.StatusBadRequest, controlapi.CodeBadRequest, "%s", err)
	}
	return w.extendOnRequest(ctx, r, state, by)
}
