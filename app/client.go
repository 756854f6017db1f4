package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// This file is the HTTP client of the API (docs/openapi.json) that the
// client commands (client_cmds.go) use. It reads ELEVATE_ADDR and
// ELEVATE_TOKEN, sends JSON, and turns API errors into exit statuses:
// 2 when the server cannot be reached, the token is refused or the request
// is malformed (fix the invocation), 1 when the server understood and said
// no (forbidden, not found, conflict).

// DefaultAddr is the server the client talks to when ELEVATE_ADDR is unset.
const DefaultAddr = "http://127.0.0.1:8200"

// apiClient talks to one elevate server.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// newAPIClient builds a client from ELEVATE_ADDR and ELEVATE_TOKEN.
func newAPIClient(getenv func(string) string) (*apiClient, error) {
	addr := strings.TrimSpace(getenv("ELEVATE_ADDR"))
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usageErr("ELEVATE_ADDR %q is not a server URL: set it to the address elevate serve listens on, such as %s", addr, DefaultAddr)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	token := strings.TrimSpace(getenv("ELEVATE_TOKEN"))
	if token == "" {
		return nil, usageErr("ELEVATE_TOKEN is not set: export ELEVATE_TOKEN with your identity provider's token or an elevate static token (elevate dev prints one)")
	}
	return &apiClient{base: u, token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("the server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil).
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "elevate/"+Version)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &connError{addr: c.base.String(), err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return &connError{addr: c.base.String(), err: err}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e) == nil {
			ae.Code, ae.Message = e.Error.Code, e.Error.Message
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("reading the server's answer to %s %s: %w (is ELEVATE_ADDR an elevate server?)", method, path, err)
	}
	return nil
}

// connError means the server could not be reached.
type connError struct {
	addr string
	err  error
}

func (e *connError) Error() string {
	var msg string
	var opErr *net.OpError
	switch {
	case errors.Is(e.err, context.DeadlineExceeded) || os.IsTimeout(e.err):
		msg = "the request timed out"
	case errors.As(e.err, &opErr):
		msg = opErr.Err.Error()
	default:
		msg = e.err.Error()
	}
	return fmt.Sprintf("cannot reach the elevate server at %s: %s. Check ELEVATE_ADDR (and that the server is running: elevate serve, or elevate dev)", e.addr, msg)
}

func (e *connError) Unwrap() error { return e.err }

// exitFor maps a client error to the command's exit status and message.
func exitFor(err error) error {
	var ce *connError
	var ae *apiError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return &exitError{code: ExitUsage, err: err}
	case errors.As(err, &ae):
		switch {
		case ae.Status == http.StatusUnauthorized:
			return usageErr("the server refused the token: %s (check ELEVATE_TOKEN)", ae)
		case ae.Status == http.StatusBadRequest || ae.Status == http.StatusRequestEntityTooLarge || ae.Status == http.StatusUnsupportedMediaType:
			return usageErr("%s", ae)
		case ae.Status >= 500:
			return usageErr("the server failed: %s", ae)
		case ae.Code != "":
			return failed(fmt.Errorf("%s (%s)", ae, ae.Code))
		default:
			return failed(ae)
		}
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return usageErr("%v", err)
}

// Wire types of the API (docs/openapi.json). Decoding is lenient: a newer
// server may add fields.

type grantView struct {
	ID              string     `json:"id"`
	Kind            string     `json:"kind"`
	Principal       string     `json:"principal"`
	Role            string     `json:"role"`
	Policy          string     `json:"policy"`
	Status          string     `json:"status"`
	Justification   string     `json:"justification,omitempty"`
	Ticket          string     `json:"ticket,omitempty"`
	Duration        string     `json:"duration"`
	DurationSeconds int64      `json:"duration_seconds"`
	RequestedAt     time.Time  `json:"requested_at"`
	NotBefore       *time.Time `json:"not_before,omitempty"`
	Starts          *time.Time `json:"starts,omitempty"`
	Expires         *time.Time `json:"expires,omitempty"`
	Renewals        int        `json:"renewals"`
	// RequesterGroups are the requester's groups when the grant was
	// requested: nil when not recorded, empty when recorded without any.
	RequesterGroups []string       `json:"requester_groups,omitzero"`
	Approvals       []approvalView `json:"approvals,omitempty"`
	Reason          string         `json:"reason,omitempty"`
	Updated         time.Time      `json:"updated"`
	Decision        *decisionView  `json:"decision,omitempty"`
}

type approvalView struct {
	Approver string    `json:"approver"`
	Approve  bool      `json:"approve"`
	At       time.Time `json:"at"`
	Comment  string    `json:"comment,omitempty"`
}

type decisionView struct {
	Decision     string       `json:"decision"`
	Policy       string       `json:"policy,omitempty"`
	Reasons      []reasonView `json:"reasons,omitempty"`
	Approvers    []string     `json:"approvers,omitempty"`
	MinApprovals int          `json:"min_approvals,omitempty"`
	AutoApproved bool         `json:"auto_approved,omitempty"`
}

type reasonView struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type historyView struct {
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Note    string    `json:"note,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
}

type grantDetail struct {
	Grant   grantView     `json:"grant"`
	History []historyView `json:"history"`
}

type grantList struct {
	Grants []grantView `json:"grants"`
}

type requestBody struct {
	Role          string `json:"role"`
	Duration      string `json:"duration,omitempty"`
	Justification string `json:"justification,omitempty"`
	Ticket        string `json:"ticket,omitempty"`
	NotBefore     string `json:"not_before,omitempty"`
}

func (c *apiClient) request(ctx context.Context, body requestBody) (grantView, error) {
	var g grantView
	err := c.do(ctx, http.MethodPost, "/v1/requests", nil, body, &g)
	return g, err
}

func (c *apiClient) grant(ctx context.Context, id string) (grantDetail, error) {
	var d grantDetail
	err := c.do(ctx, http.MethodGet, "/v1/grants/"+url.PathEscape(id), nil, nil, &d)
	return d, err
}

func (c *apiClient) grants(ctx context.Context, q url.Values) ([]grantView, error) {
	var l grantList
	err := c.do(ctx, http.MethodGet, "/v1/grants", q, nil, &l)
	return l.Grants, err
}

func (c *apiClient) act(ctx context.Context, id, action string, body any) (grantView, error) {
	var g grantView
	err := c.do(ctx, http.MethodPost, "/v1/grants/"+url.PathEscape(id)+"/"+action, nil, body, &g)
	return g, err
}
