package gcpemu

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"google.golang.org/genproto/googleapis/type/expr"
)

// maxCachedPrograms bounds the compiled-expression cache.
const maxCachedPrograms = 10_000

// conditionEnv compiles and evaluates IAM Conditions with CEL. It declares
// the attributes a Resource Manager condition may use: request.time and
// resource.name/type/service.
type conditionEnv struct {
	env *cel.Env

	mu    sync.Mutex
	progs map[string]cel.Program
}

func newConditionEnv() *conditionEnv {
	env, err := cel.NewEnv(
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("resource", cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		panic(fmt.Sprintf("gcpemu: building CEL environment: %v", err))
	}
	return &conditionEnv{env: env, progs: make(map[string]cel.Program)}
}

// validate checks a condition the way SetIamPolicy does: a title and an
// expression that compiles to a boolean.
func (c *conditionEnv) validate(x *expr.Expr) error {
	if strings.TrimSpace(x.GetTitle()) == "" {
		return errors.New("the condition has no title: every condition needs one")
	}
	_, err := c.program(x.GetExpression())
	return err
}

// program compiles src, caching the result.
func (c *conditionEnv) program(src string) (cel.Program, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.progs[src]; ok {
		return p, nil
	}
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("the condition has an empty expression")
	}
	ast, iss := c.env.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("the expression %q is not valid CEL: %w", src, iss.Err())
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, fmt.Errorf("the expression %q yields %s, not a boolean", src, t)
	}
	p, err := c.env.Program(ast)
	if err != nil {
		return nil, fmt.Errorf("preparing expression %q: %w", src, err)
	}
	if len(c.progs) >= maxCachedPrograms {
		clear(c.progs) // every grant writes a new expression: keep the cache bounded
	}
	c.progs[src] = p
	return p, nil
}

// eval evaluates a condition for a request on resource at time at. An
// expression that fails to compile or evaluate, or yields no boolean,
// grants nothing.
func (c *conditionEnv) eval(x *expr.Expr, resource string, at time.Time) (bool, error) {
	p, err := c.program(x.GetExpression())
	if err != nil {
		return false, err
	}
	kind, _, _ := strings.Cut(resource, "/")
	typ := map[string]string{
		"projects":      "cloudresourcemanager.googleapis.com/Project",
		"folders":       "cloudresourcemanager.googleapis.com/Folder",
		"organizations": "cloudresourcemanager.googleapis.com/Organization",
	}[kind]
	out, _, err := p.Eval(map[string]any{
		"request": map[string]any{"time": at.UTC()},
		"resource": map[string]any{
			"name":    "//cloudresourcemanager.googleapis.com/" + resource,
			"type":    typ,
			"service": "cloudresourcemanager.googleapis.com",
		},
	})
	if err != nil {
		return false, fmt.Errorf("evaluating %q: %w", x.GetExpression(), err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("evaluating %q: got %v, not a boolean", x.GetExpression(), out)
	}
	return b, nil
}

// EffectiveAccess reports whether member (user:…, serviceAccount:…) holds
// role on resource at time at: through an unconditional binding, or a
// conditional one whose expression is true with request.time = at. A
// condition that fails to evaluate grants nothing. It reads the stored
// policy directly: no call is counted, no fault injected.
func (e *Emulator) EffectiveAccess(resource, member, role string, at time.Time) bool {
	e.mu.Lock()
	r := e.resources[resource]
	var bindings []*bindingCopy
	if r != nil {
		for _, b := range r.policy.Bindings {
			if b.Role != role {
				continue
			}
			for _, m := range b.Members {
				if m == member {
					bindings = append(bindings, &bindingCopy{cond: b.Condition})
					break
				}
			}
		}
	}
	e.mu.Unlock()
	for _, b := range bindings {
		if b.cond == nil {
			return true
		}
		if ok, err := e.cel.eval(b.cond, resource, at); err == nil && ok {
			return true
		}
	}
	return false
}

// bindingCopy is what EffectiveAccess keeps of a binding after releasing
// the lock; conditions are never mutated in place, so sharing is safe.
type bindingCopy struct{ cond *expr.Expr }
