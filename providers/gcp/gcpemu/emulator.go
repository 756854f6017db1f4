// Package gcpemu is elevate's Google Cloud emulator: a gRPC server that the
// real Google Cloud Go SDK talks to (in process or on a loopback port). It
// serves Resource Manager v3 Projects, Folders and Organizations
// Get/SetIamPolicy and Cloud Logging ListLogEntries, and models the
// behaviour elevate depends on: etag conflicts (ABORTED), policy version 3
// and the version 1 "_withcond_" view, IAM Conditions evaluated with CEL,
// GCP's policy limits, an audit log entry for every call, the 24-hour
// default window of entries.list and its read quota, and injected faults.
// Tests drive it through the SDK clients; `elevate dev` points the GCP
// provider at it.
package gcpemu

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"cloud.google.com/go/resourcemanager/apiv3/resourcemanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// PrincipalHeader is the gRPC metadata key that names the caller recorded in
// audit entries (authenticationInfo.principalEmail); see WithPrincipal.
const PrincipalHeader = "x-emu-principal"

// DefaultPrincipal is the caller recorded when a call carries no
// PrincipalHeader.
const DefaultPrincipal = "elevate@elevate-dev.iam.gserviceaccount.com"

// Method names used as counter keys and in audit entries' methodName
// (prefixed by the service, e.g. google.cloud.resourcemanager.v3.Projects).
const (
	MethodGetIamPolicy       = "GetIamPolicy"
	MethodSetIamPolicy       = "SetIamPolicy"
	MethodTestIamPermissions = "TestIamPermissions"
	MethodGetResource        = "GetResource" // GetProject, GetFolder, GetOrganization
	MethodListLogEntries     = "ListLogEntries"
)

// AbortedMessage is GCP's message for a SetIamPolicy whose etag is stale.
const AbortedMessage = "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."

// Options configures an Emulator.
type Options struct {
	// Clock is the emulator's notion of now: audit timestamps, condition
	// evaluation in TestIamPermissions, the 24-hour default window and the
	// read quota window of ListLogEntries. Required.
	Clock func() time.Time
	// Seed seeds etags, insert IDs and the fault injector.
	Seed int64
	// AutoCreate creates unknown projects, folders and organizations on
	// first use (dev mode). Without it, IAM calls on an unknown resource
	// fail PERMISSION_DENIED as GCP's do.
	AutoCreate bool
	// ReadQuotaPerMinute is the entries.list quota: ListLogEntries calls per
	// minute of Clock time per quota project (the x-goog-user-project
	// header, or the emulator as a whole). Zero means GCP's 60; negative
	// turns the quota off.
	ReadQuotaPerMinute int
	// AllowBasicRoleConditions accepts conditions on the basic roles
	// (roles/owner, roles/editor, roles/viewer), which GCP refuses. Real
	// GCP will fail such writes: use it only to keep going while a policy
	// that grants a basic role temporarily is being fixed.
	AllowBasicRoleConditions bool
	// MaxLogEntries bounds the stored log entries; the oldest are dropped
	// beyond it (a long `elevate dev` run). Zero means 100,000.
	MaxLogEntries int
}

// Faults are injected into calls; see SetFaults.
type Faults struct {
	// ErrorRate is the fraction of calls that fail UNAVAILABLE.
	ErrorRate float64
	// ResourceExhaustedRate is the fraction of calls that fail
	// RESOURCE_EXHAUSTED with a RetryInfo detail of RetryDelay.
	ResourceExhaustedRate float64
	// RetryDelay is the RetryInfo delay of injected RESOURCE_EXHAUSTED
	// errors; default 1s.
	RetryDelay time.Duration
	// Latency is added to every call (before it is served).
	Latency time.Duration
	// AbortedStorm makes the next N SetIamPolicy calls fail ABORTED even
	// with a fresh etag (each such call uses up one).
	AbortedStorm int
	// PermissionDenied makes every call on the named resources
	// (projects/ID, folders/ID, organizations/ID) fail PERMISSION_DENIED.
	PermissionDenied map[string]bool
}

// CallKey names a counted call: an RPC method (one of the Method*
// constants) on a resource.
type CallKey struct {
	Method   string
	Resource string
}

// Counters are what the emulator saw, for tests and benchmarks.
type Counters struct {
	// Calls counts calls that reached the emulator (after injected
	// latency, before injected errors) per method and resource.
	// ListLogEntries is counted once per resource name of the request.
	Calls map[CallKey]int
	// SetWithEtag and SetWithoutEtag split SetIamPolicy calls by whether
	// the policy carried an etag.
	SetWithEtag, SetWithoutEtag int
	// Aborted counts SetIamPolicy calls that failed ABORTED (stale etags
	// and storms).
	Aborted int
	// V1WriteAttempts counts SetIamPolicy calls with a policy version
	// below 3 that touched conditions: conditions sent with version 1, a
	// "_withcond_" role written back, or a version 1 policy written over a
	// policy that has conditions.
	V1WriteAttempts int
	// ListWithoutTimestamp counts ListLogEntries calls whose filter had no
	// timestamp bound (GCP then searches only the last 24 hours).
	ListWithoutTimestamp int
	// InjectedUnavailable, InjectedExhausted and QuotaExceeded count
	// injected UNAVAILABLE, injected RESOURCE_EXHAUSTED, and ListLogEntries
	// calls refused by the read quota.
	InjectedUnavailable, InjectedExhausted, QuotaExceeded int
}

// Emulator holds the emulated resources, their allow policies and the
// audit log. The zero value is not usable; call New.
type Emulator struct {
	clock      func() time.Time
	autoCreate bool
	readQuota  int
	basicConds bool
	maxEntries int

	mu        sync.Mutex
	rng       *rand.Rand
	writeSeq  uint64
	faults    Faults
	resources map[string]*resource
	entries   []storedEntry
	entrySeq  uint64
	counters  Counters
	quota     map[string][]time.Time // quota project -> recent ListLogEntries call times
	cel       *conditionEnv
}

// resource is one project, folder or organization.
type resource struct {
	name   string
	policy *iampb.Policy // full (version 3) form, etag included
}

// New returns an emulator with no resources. It panics if opts.Clock is nil.
func New(opts Options) *Emulator {
	if opts.Clock == nil {
		panic("gcpemu.New: Options.Clock is required")
	}
	quota := opts.ReadQuotaPerMinute
	if quota == 0 {
		quota = 60
	}
	seed := uint64(opts.Seed)
	return &Emulator{
		clock:      opts.Clock,
		autoCreate: opts.AutoCreate,
		readQuota:  quota,
		basicConds: opts.AllowBasicRoleConditions,
		maxEntries: cmp.Or(max(opts.MaxLogEntries, 0), 100_000),
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		resources:  make(map[string]*resource),
		counters:   Counters{Calls: make(map[CallKey]int)},
		quota:      make(map[string][]time.Time),
		cel:        newConditionEnv(),
	}
}

// CreateProject creates projects/id with an empty allow policy (no-op if it
// exists) and returns its resource name.
func (e *Emulator) CreateProject(id string) string { return e.create("projects/" + id) }

// CreateFolder creates folders/id (no-op if it exists) and returns its
// resource name.
func (e *Emulator) CreateFolder(id string) string { return e.create("folders/" + id) }

// CreateOrganization creates organizations/id (no-op if it exists) and
// returns its resource name.
func (e *Emulator) CreateOrganization(id string) string { return e.create("organizations/" + id) }

func (e *Emulator) create(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lookupLocked(name, true)
	return name
}

// lookupLocked returns the resource named name, creating it when create is
// set; the caller holds mu.
func (e *Emulator) lookupLocked(name string, create bool) *resource {
	if r, ok := e.resources[name]; ok {
		return r
	}
	if !create {
		return nil
	}
	r := &resource{name: name, policy: &iampb.Policy{Version: 1, Etag: e.nextEtagLocked()}}
	e.resources[name] = r
	return r
}

// nextEtagLocked returns a new etag: a write sequence number and random
// bits, so no two writes ever share one; the caller holds mu.
func (e *Emulator) nextEtagLocked() []byte {
	e.writeSeq++
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, e.writeSeq<<32|uint64(e.rng.Uint32()))
	return b
}

// newInsertIDLocked returns a random log insert ID; the caller holds mu.
func (e *Emulator) newInsertIDLocked() string {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, e.rng.Uint64())
	return hex.EncodeToString(b)
}

// SetFaults replaces the injected faults.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f.PermissionDenied = cloneMap(f.PermissionDenied)
	e.faults = f
}

// Counters returns a copy of the counters.
func (e *Emulator) Counters() Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.counters
	c.Calls = cloneMap(e.counters.Calls)
	return c
}

// Calls returns how many method calls reached resource.
func (e *Emulator) Calls(method, resource string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counters.Calls[CallKey{method, resource}]
}

// ResetCounters zeroes the counters.
func (e *Emulator) ResetCounters() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counters = Counters{Calls: make(map[CallKey]int)}
}

// Policy returns a copy of resource's stored allow policy in its full
// (version 3) form, or nil if the resource does not exist. It counts no
// call and injects no fault.
func (e *Emulator) Policy(resource string) *iampb.Policy {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.resources[resource]
	if r == nil {
		return nil
	}
	return proto.Clone(r.policy).(*iampb.Policy)
}

// Resources returns the names of every emulated resource, sorted.
func (e *Emulator) Resources() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.resources))
	for n := range e.resources {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// inject runs the faults for one call on resources: latency, then the
// call is counted, then permission denials and random errors.
func (e *Emulator) inject(ctx context.Context, method string, resources ...string) error {
	e.mu.Lock()
	latency := e.faults.Latency
	e.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err()
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range resources {
		e.counters.Calls[CallKey{method, r}]++
	}
	for _, r := range resources {
		if e.faults.PermissionDenied[r] {
			return permissionDenied(method, r)
		}
	}
	if e.faults.ErrorRate > 0 && e.rng.Float64() < e.faults.ErrorRate {
		e.counters.InjectedUnavailable++
		return status.Error(codes.Unavailable, "The service is currently unavailable.")
	}
	if e.faults.ResourceExhaustedRate > 0 && e.rng.Float64() < e.faults.ResourceExhaustedRate {
		e.counters.InjectedExhausted++
		delay := e.faults.RetryDelay
		if delay <= 0 {
			delay = time.Second
		}
		return exhausted("Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of the service.", delay)
	}
	return nil
}

// exhausted builds a RESOURCE_EXHAUSTED status carrying a RetryInfo detail.
func exhausted(msg string, delay time.Duration) error {
	st := status.New(codes.ResourceExhausted, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); err == nil {
		st = d
	}
	return st.Err()
}

// permissionDenied is GCP's answer for a call on a resource the caller may
// not use, or that does not exist (GCP does not tell the two apart).
func permissionDenied(method, res string) error {
	return status.Errorf(codes.PermissionDenied, "Permission '%s' denied on resource '//cloudresourcemanager.googleapis.com/%s' (or it may not exist).", permissionFor(method, res), res)
}

// permissionFor names the IAM permission a method needs on res.
func permissionFor(method, res string) string {
	kind, _, _ := strings.Cut(res, "/")
	switch method {
	case MethodGetIamPolicy:
		return "resourcemanager." + kind + ".getIamPolicy"
	case MethodSetIamPolicy:
		return "resourcemanager." + kind + ".setIamPolicy"
	case MethodListLogEntries:
		return "logging.logEntries.list"
	default:
		return "resourcemanager." + kind + ".get"
	}
}

// principalOf returns the caller named by the call's metadata.
func principalOf(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(PrincipalHeader); len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return DefaultPrincipal
}

// Register registers the emulated services on s: Resource Manager v3
// Projects, Folders and Organizations, and Logging v2.
func (e *Emulator) Register(s *grpc.Server) {
	resourcemanagerpb.RegisterProjectsServer(s, &projectsServer{e: e})
	resourcemanagerpb.RegisterFoldersServer(s, &foldersServer{e: e})
	resourcemanagerpb.RegisterOrganizationsServer(s, &organizationsServer{e: e})
	loggingpb.RegisterLoggingServiceV2Server(s, &loggingServer{e: e})
}

// Listen serves the emulator over insecure gRPC on addr, which must be a
// loopback address ("" means 127.0.0.1 on a free port). It returns the
// address it listens on and a function that stops the server.
func (e *Emulator) Listen(addr string) (string, func(), error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("parsing emulator address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, fmt.Errorf("starting GCP emulator: address %q is not a loopback address: use 127.0.0.1:PORT", addr)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("starting GCP emulator: %w", err)
	}
	s := grpc.NewServer()
	e.Register(s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			s.Stop()
			<-done
		})
	}
	return lis.Addr().String(), stop, nil
}

// ClientOptions returns the options that point a Google Cloud SDK client
// (resourcemanager.NewProjectsClient, logadmin.NewClient, …) at an emulator
// listening on addr: the endpoint, no authentication, insecure transport.
func ClientOptions(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// WithPrincipal returns a client option that makes every call of the client
// carry principal (an email) as the caller recorded in audit entries.
func WithPrincipal(principal string) option.ClientOption {
	return option.WithGRPCDialOption(grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			ctx = metadata.AppendToOutgoingContext(ctx, PrincipalHeader, principal)
			return invoker(ctx, method, req, reply, cc, opts...)
		}))
}

// errNoResource reports a resource name this emulator cannot serve.
var errNoResource = errors.New("no such resource")

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
