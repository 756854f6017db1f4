// Package gcp is elevate's Google Cloud provider and audit source. A grant
// is a conditional role binding on the allow policy of a project, folder or
// organization: the condition's title carries the grant ID
// ("elevate:<grant-id>") and its expression bounds request.time, so IAM
// itself stops honouring the grant at expiry. Every change to one resource
// is one read-modify-write of its allow policy (version 3, with the etag of
// the read), repeated whole when a concurrent change wins; every binding
// elevate does not own goes back exactly as it was read. The audit source
// reads Cloud Audit Logs through logadmin.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	resourcemanager "cloud.google.com/go/resourcemanager/apiv3"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
)

// Defaults of Config.
const (
	DefaultConflictAttempts = 10
	DefaultConflictBase     = 50 * time.Millisecond
	DefaultConflictMax      = 2 * time.Second
	DefaultReuseRead        = 15 * time.Second
)

// Config configures a Provider.
type Config struct {
	// Endpoint overrides the Resource Manager endpoint (host:port); empty
	// means Google's.
	Endpoint string
	// ClientOptions are passed to every client after the endpoint. Empty
	// means Application Default Credentials; tests and dev mode pass the
	// emulator's (a loopback connection without authentication).
	ClientOptions []option.ClientOption
	// Clock is the provider's notion of now, used to prune expired
	// bindings; default time.Now.
	Clock func() time.Time
	// Conflicts says how a read-modify-write that lost to a concurrent
	// policy change (ABORTED) is repeated, whole, from a fresh read:
	// default 10 attempts, full-jitter backoff from 50ms to 2s. After the
	// last attempt the error is transient, for the caller's retries.
	Conflicts providers.RetryPolicy
	// Limits are checked before every write; zero fields mean IAM's.
	Limits Limits
	// ReuseRead is how long Apply may start from the policy the last
	// Observe of the scope read instead of reading it again (the etag
	// still guards the write: a stale copy costs one ABORTED attempt);
	// default 15s, negative to always read.
	ReuseRead time.Duration
}

// Stats counts the provider's calls to the cloud.
type Stats struct {
	Reads     int64 // GetIamPolicy calls
	Writes    int64 // SetIamPolicy calls, successful or not
	Conflicts int64 // writes refused with ABORTED (each retried whole)
	Pruned    int64 // expired elevate bindings removed in passing
}

// iamClient is the part of the Resource Manager clients elevate uses.
type iamClient interface {
	GetIamPolicy(ctx context.Context, req *iampb.GetIamPolicyRequest, opts ...gax.CallOption) (*iampb.Policy, error)
	SetIamPolicy(ctx context.Context, req *iampb.SetIamPolicyRequest, opts ...gax.CallOption) (*iampb.Policy, error)
}

// Provider manages conditional role bindings on GCP allow policies. It is
// safe for concurrent use.
type Provider struct {
	projects, folders, organizations iamClient
	closers                          []func() error

	clock     func() time.Time
	conflicts providers.RetryPolicy
	limits    Limits
	reuse     time.Duration

	mu    sync.Mutex
	reads map[model.ScopeKey]cachedPolicy

	nReads, nWrites, nConflicts, nPruned atomic.Int64
}

type cachedPolicy struct {
	policy *iampb.Policy
	at     time.Time
}

// New connects the Projects, Folders and Organizations clients. Close
// releases them.
func New(cfg Config) (*Provider, error) {
	ctx := context.Background()
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint))
	}
	opts = append(opts, cfg.ClientOptions...)
	p := newProvider(cfg)
	pc, err := resourcemanager.NewProjectsClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the Resource Manager projects API: %w", err)
	}
	fc, err := resourcemanager.NewFoldersClient(ctx, opts...)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("connecting to the Resource Manager folders API: %w", err)
	}
	oc, err := resourcemanager.NewOrganizationsClient(ctx, opts...)
	if err != nil {
		pc.Close()
		fc.Close()
		return nil, fmt.Errorf("connecting to the Resource Manager organizations API: %w", err)
	}
	p.projects, p.folders, p.organizations = pc, fc, oc
	p.closers = []func() error{pc.Close, fc.Close, oc.Close}
	return p, nil
}

func newProvider(cfg Config) *Provider {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	c := cfg.Conflicts
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultConflictAttempts
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = DefaultConflictBase
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = DefaultConflictMax
	}
	if c.Sleep == nil {
		c.Sleep = sleepContext
	}
	reuse := cfg.ReuseRead
	if reuse == 0 {
		reuse = DefaultReuseRead
	}
	return &Provider{
		clock: cfg.Clock, conflicts: c, limits: cfg.Limits.orDefault(), reuse: reuse,
		reads: make(map[model.ScopeKey]cachedPolicy),
	}
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Close closes the clients.
func (p *Provider) Close() error {
	var errs []error
	for _, c := range p.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Cloud implements providers.Provider.
func (p *Provider) Cloud() model.Cloud { return model.CloudGCP }

// Stats returns the provider's call counts so far.
func (p *Provider) Stats() Stats {
	return Stats{Reads: p.nReads.Load(), Writes: p.nWrites.Load(), Conflicts: p.nConflicts.Load(), Pruned: p.nPruned.Load()}
}

// client routes a scope to the client of its resource type.
func (p *Provider) client(scope model.ScopeKey) (iamClient, error) {
	if scope.Cloud != model.CloudGCP {
		return nil, fmt.Errorf("%w: scope %s belongs to cloud %q, this provider serves %q", providers.ErrInvalidChange, scope, scope.Cloud, model.CloudGCP)
	}
	kind, id, ok := strings.Cut(scope.Scope, "/")
	if ok && id != "" && !strings.Contains(id, "/") {
		switch kind {
		case "projects":
			return p.projects, nil
		case "folders":
			return p.folders, nil
		case "organizations":
			return p.organizations, nil
		}
	}
	return nil, fmt.Errorf("%w: GCP scope %q is not a resource name: write projects/PROJECT_ID, folders/FOLDER_ID or organizations/ORG_ID", providers.ErrInvalidChange, scope.Scope)
}

// noRetry turns off the client library's own retries: errors are
// classified here and retried by the provider decorators, so every
// attempt is counted and traced.
var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

// callErr wraps a failed call: classified, and carrying the context's
// error when the caller gave up.
func callErr(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", what, errors.Join(cerr, err))
	}
	return fmt.Errorf("%s: %w", what, classify(err))
}

// read gets the scope's allow policy at version 3.
func (p *Provider) read(ctx context.Context, c iamClient, scope model.ScopeKey) (*iampb.Policy, error) {
	p.nReads.Add(1)
	pol, err := c.GetIamPolicy(ctx, &iampb.GetIamPolicyRequest{
		Resource: scope.Scope,
		Options:  &iampb.GetPolicyOptions{RequestedPolicyVersion: PolicyVersion},
	}, noRetry)
	if err != nil {
		return nil, callErr(ctx, "reading the allow policy of "+scope.Scope, err)
	}
	if err := checkReadable(pol); err != nil {
		return nil, fmt.Errorf("reading the allow policy of %s: %w", scope.Scope, err)
	}
	return pol, nil
}

func (p *Provider) remember(scope model.ScopeKey, pol *iampb.Policy) {
	if p.reuse < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads[scope] = cachedPolicy{policy: pol, at: p.clock()}
}

func (p *Provider) forget(scope model.ScopeKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.reads, scope)
}

// recent returns a private copy of the scope's last read policy when it is
// fresh enough to start a read-modify-write from, and takes it out of the
// cache (a copy is used for one attempt only).
func (p *Provider) recent(scope model.ScopeKey) *iampb.Policy {
	if p.reuse < 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.reads[scope]
	if !ok {
		return nil
	}
	delete(p.reads, scope)
	if age := p.clock().Sub(c.at); age < 0 || age > p.reuse {
		return nil
	}
	return proto.CloneOf(c.policy)
}

// Observe implements providers.Provider with one GetIamPolicy call: every
// elevate binding on the resource, and on the targets asked for every
// unconditional binding (standing access) and every other conditional
// binding whose time window is readable.
func (p *Provider) Observe(ctx context.Context, scope model.ScopeKey, targets []model.Target) ([]model.Binding, error) {
	c, err := p.client(scope)
	if err != nil {
		return nil, err
	}
	pol, err := p.read(ctx, c, scope)
	if err != nil {
		return nil, err
	}
	p.remember(scope, pol)
	return observe(scope, pol, targets), nil
}

// Apply implements providers.Provider as one read-modify-write of the
// resource's allow policy: read at version 3 (or start from Observe's
// read), prune elevate's expired bindings, apply every change, check the
// limits, and write version 3 with the etag of the read. When the write
// loses to a concurrent change (ABORTED) the whole read-modify-write runs
// again from a fresh read, with jittered backoff. Nothing is written when
// nothing changed.
func (p *Provider) Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]providers.Result, error) {
	c, err := p.client(scope)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		results, err := p.readModifyWrite(ctx, c, scope, changes, attempt == 0)
		if err == nil {
			return results, nil
		}
		if !isAborted(err) || ctx.Err() != nil {
			return nil, err
		}
		if attempt+1 >= p.conflicts.MaxAttempts {
			return nil, fmt.Errorf("giving up after %d read-modify-writes lost to concurrent changes: %w", attempt+1, err)
		}
		d, _ := p.conflicts.Backoff(attempt, err)
		if serr := p.conflicts.Sleep(ctx, d); serr != nil {
			return nil, fmt.Errorf("waiting to repeat the read-modify-write of %s: %w", scope.Scope, errors.Join(err, serr))
		}
	}
}

func (p *Provider) readModifyWrite(ctx context.Context, c iamClient, scope model.ScopeKey, changes []model.Change, reuse bool) ([]providers.Result, error) {
	var pol *iampb.Policy
	if reuse {
		pol = p.recent(scope)
	}
	if pol == nil {
		var err error
		if pol, err = p.read(ctx, c, scope); err != nil {
			return nil, err
		}
	}
	if len(pol.GetEtag()) == 0 {
		return nil, fmt.Errorf("reading the allow policy of %s: it came without an etag; refusing to write without concurrency control", scope.Scope)
	}
	ed := newEditor(scope, pol, p.clock(), p.limits)
	pruned := ed.prune()
	results := make([]providers.Result, len(changes))
	for i, ch := range changes {
		results[i].Change = ch
		b, err := ed.apply(ch)
		if err != nil {
			results[i].Err = fmt.Errorf("applying %s change to %s: %w", ch.Reason, scope.Scope, err)
			continue
		}
		results[i].Binding = b
	}
	if !ed.changed {
		p.remember(scope, pol)
		return results, nil
	}
	p.nWrites.Add(1)
	written, err := c.SetIamPolicy(ctx, &iampb.SetIamPolicyRequest{Resource: scope.Scope, Policy: ed.policy(pol)}, noRetry)
	if err != nil {
		p.forget(scope)
		if isAborted(err) {
			p.nConflicts.Add(1)
		}
		return nil, callErr(ctx, "writing the allow policy of "+scope.Scope, err)
	}
	p.nPruned.Add(int64(pruned))
	p.remember(scope, written)
	return results, nil
}

// Interface check.
var _ providers.Provider = (*Provider)(nil)
