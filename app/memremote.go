package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
)

// This file serves the in-memory provider over HTTP (the memory emulator,
// `elevate emulator`) and is the provider that talks to it. An emulator in
// its own process plays the part of a cloud: its bindings outlive the
// daemon, so a daemon that is killed and restarted finds what it wrote,
// exactly as with a real cloud. The wire format is JSON of the model types.
//
// POST /v1/observe {"scope", "targets"}  → {"bindings"}
// POST /v1/apply   {"scope", "changes"}  → {"results": [{"binding"?, "error"?}]}
// GET  /v1/bindings                      → {"bindings"} (every cloud and scope; for tests and demos)
//
// A whole-call failure is a non-2xx answer with {"error"}; errors carry a
// kind so the client can classify them as the provider did.

// memoryEmulator serves one memory provider per cloud.
type memoryEmulator struct {
	providers map[model.Cloud]*memory.Provider
}

func newMemoryEmulator(clouds []model.Cloud, daemonEnforced bool) *memoryEmulator {
	e := &memoryEmulator{providers: map[model.Cloud]*memory.Provider{}}
	for _, c := range clouds {
		e.providers[c] = memory.New(memory.Options{Cloud: c, DaemonEnforced: daemonEnforced})
	}
	return e
}

// Error kinds of the wire format.
const (
	wireTransient = "transient"
	wireNotOwned  = "not-owned"
	wireInvalid   = "invalid"
	wirePermanent = "permanent"
)

type wireError struct {
	Message      string `json:"message"`
	Kind         string `json:"kind"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Message: err.Error(), Kind: wirePermanent}
	switch {
	case providers.IsTransient(err):
		w.Kind = wireTransient
		w.RetryAfterMS = providers.RetryAfterOf(err).Milliseconds()
	case errors.Is(err, providers.ErrNotOwned):
		w.Kind = wireNotOwned
	case errors.Is(err, providers.ErrInvalidChange):
		w.Kind = wireInvalid
	}
	return w
}

// fromWire rebuilds an error the providers package classifies as the
// emulator's provider did.
func (w *wireError) err() error {
	if w == nil {
		return nil
	}
	base := errors.New("memory emulator: " + w.Message)
	switch w.Kind {
	case wireTransient:
		return providers.Throttled(base, time.Duration(w.RetryAfterMS)*time.Millisecond)
	case wireNotOwned:
		return fmt.Errorf("%w: %w", providers.ErrNotOwned, base)
	case wireInvalid:
		return fmt.Errorf("%w: %w", providers.ErrInvalidChange, base)
	}
	return base
}

type observeRequest struct {
	Scope   model.ScopeKey `json:"scope"`
	Targets []model.Target `json:"targets"`
}

type applyRequest struct {
	Scope   model.ScopeKey `json:"scope"`
	Changes []model.Change `json:"changes"`
}

type wireResult struct {
	Binding *model.Binding `json:"binding,omitempty"`
	Error   *wireError     `json:"error,omitempty"`
}

type bindingsAnswer struct {
	Bindings []model.Binding `json:"bindings"`
}

type applyAnswer struct {
	Results []wireResult `json:"results"`
}

func (e *memoryEmulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	writeErr := func(status int, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]*wireError{"error": toWire(err)})
	}
	write := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	provider := func(c model.Cloud) (*memory.Provider, bool) {
		p, ok := e.providers[c]
		if !ok {
			writeErr(http.StatusBadRequest, fmt.Errorf("%w: the emulator does not serve cloud %q", providers.ErrInvalidChange, c))
		}
		return p, ok
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/observe":
		var req observeRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeErr(http.StatusBadRequest, fmt.Errorf("%w: decoding the request: %v", providers.ErrInvalidChange, err))
			return
		}
		p, ok := provider(req.Scope.Cloud)
		if !ok {
			return
		}
		bs, err := p.Observe(r.Context(), req.Scope, req.Targets)
		if err != nil {
			writeErr(statusOf(err), err)
			return
		}
		write(bindingsAnswer{Bindings: bs})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/apply":
		var req applyRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeErr(http.StatusBadRequest, fmt.Errorf("%w: decoding the request: %v", providers.ErrInvalidChange, err))
			return
		}
		p, ok := provider(req.Scope.Cloud)
		if !ok {
			return
		}
		res, err := p.Apply(r.Context(), req.Scope, req.Changes)
		if err != nil {
			writeErr(statusOf(err), err)
			return
		}
		out := applyAnswer{Results: make([]wireResult, len(res))}
		for i, x := range res {
			out.Results[i] = wireResult{Binding: x.Binding, Error: toWire(x.Err)}
		}
		write(out)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/bindings":
		write(bindingsAnswer{Bindings: e.all()})
	case r.Method == http.MethodGet && r.URL.Path == "/healthz":
		_, _ = io.WriteString(w, "ok\n")
	default:
		writeErr(http.StatusNotFound, fmt.Errorf("no endpoint %s %s", r.Method, r.URL.Path))
	}
}

// all returns every binding the emulator holds, in a stable order.
func (e *memoryEmulator) all() []model.Binding {
	clouds := make([]model.Cloud, 0, len(e.providers))
	for c := range e.providers {
		clouds = append(clouds, c)
	}
	slices.Sort(clouds)
	out := []model.Binding{}
	for _, c := range clouds {
		p := e.providers[c]
		for _, s := range p.Scopes() {
			out = append(out, p.Bindings(s)...)
		}
	}
	return out
}

func statusOf(err error) int {
	if providers.IsTransient(err) {
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// remoteMemory is a providers.Provider for one cloud of a memory emulator.
type remoteMemory struct {
	cloud  model.Cloud
	base   string
	client *http.Client
}

func newRemoteMemory(cloud model.Cloud, endpoint string) *remoteMemory {
	return &remoteMemory{cloud: cloud, base: strings.TrimSuffix(endpoint, "/"), client: &http.Client{Timeout: 30 * time.Second}}
}

func (m *remoteMemory) Cloud() model.Cloud { return m.cloud }

func (m *remoteMemory) post(ctx context.Context, path string, body, out any) error {
	return m.postDecode(ctx, path, body, func(dec *json.Decoder) error { return dec.Decode(out) })
}

// postDecode posts body to path and hands a successful answer to decode.
func (m *remoteMemory) postDecode(ctx context.Context, path string, body any, decode func(*json.Decoder) error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding the emulator request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.base+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("building the emulator request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		// The emulator is down or restarting: like a cloud outage, retry.
		return providers.Transient(fmt.Errorf("calling the memory emulator at %s: %w", m.base, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error *wireError `json:"error"`
		}
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == nil {
			err := fmt.Errorf("memory emulator answered %s", resp.Status)
			if resp.StatusCode >= 500 {
				return providers.Transient(err)
			}
			return err
		}
		return e.Error.err()
	}
	if err := decode(json.NewDecoder(resp.Body)); err != nil {
		return providers.Transient(fmt.Errorf("reading the memory emulator's answer: %w", err))
	}
	return nil
}

// Observe reads the bindings of scope. The answer is decoded one binding
// at a time rather than read whole first (a scope may hold a hundred
// thousand bindings), and the bindings share the strings of the targets
// asked for instead of each holding its own copies.
func (m *remoteMemory) Observe(ctx context.Context, scope model.ScopeKey, targets []model.Target) ([]model.Binding, error) {
	var out []model.Binding
	kinds := map[model.PrincipalKind]model.PrincipalKind{}
	err := m.postDecode(ctx, "/v1/observe", observeRequest{Scope: scope, Targets: targets}, func(dec *json.Decoder) error {
		out = nil
		return decodeBindings(dec, func(b model.Binding) {
			if i := slices.Index(targets, b.Target); i >= 0 {
				b.Target = targets[i]
			}
			if k, ok := kinds[b.Principal.Kind]; ok {
				b.Principal.Kind = k
			} else {
				kinds[b.Principal.Kind] = b.Principal.Kind
			}
			out = append(out, b)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading bindings of %s: %w", scope, err)
	}
	return out, nil
}

// decodeBindings decodes a bindingsAnswer from dec, calling yield with each
// binding as it is decoded.
func decodeBindings(dec *json.Decoder, yield func(model.Binding)) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if key, _ := tok.(string); key != "bindings" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return err
		}
		if tok == nil { // "bindings": null
			continue
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return fmt.Errorf("the bindings are %v, not a list", tok)
		}
		for dec.More() {
			var b model.Binding
			if err := dec.Decode(&b); err != nil {
				return err
			}
			yield(b)
		}
		if err := expectDelim(dec, ']'); err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

func (m *remoteMemory) Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]providers.Result, error) {
	var out applyAnswer
	if err := m.post(ctx, "/v1/apply", applyRequest{Scope: scope, Changes: changes}, &out); err != nil {
		return nil, fmt.Errorf("writing bindings of %s: %w", scope, err)
	}
	if len(out.Results) != len(changes) {
		return nil, fmt.Errorf("writing bindings of %s: the emulator returned %d results for %d changes", scope, len(out.Results), len(changes))
	}
	res := make([]providers.Result, len(changes))
	for i, r := range out.Results {
		res[i] = providers.Result{Change: changes[i], Binding: r.Binding, Err: r.Error.err()}
	}
	return res, nil
}

var _ providers.Provider = (*remoteMemory)(nil)
