package policies

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// autoApproveFunctions are the functions available to auto_approve
// expressions: cty's standard library plus can and try.
var autoApproveFunctions = map[string]function.Function{
	"abs":             stdlib.AbsoluteFunc,
	"can":             tryfunc.CanFunc,
	"coalesce":        stdlib.CoalesceFunc,
	"concat":          stdlib.ConcatFunc,
	"contains":        stdlib.ContainsFunc,
	"distinct":        stdlib.DistinctFunc,
	"format":          stdlib.FormatFunc,
	"join":            stdlib.JoinFunc,
	"length":          stdlib.LengthFunc,
	"lower":           stdlib.LowerFunc,
	"max":             stdlib.MaxFunc,
	"min":             stdlib.MinFunc,
	"regex":           stdlib.RegexFunc,
	"regexall":        stdlib.RegexAllFunc,
	"setintersection": stdlib.SetIntersectionFunc,
	"split":           stdlib.SplitFunc,
	"strlen":          stdlib.StrlenFunc,
	"substr":          stdlib.SubstrFunc,
	"trimspace":       stdlib.TrimSpaceFunc,
	"trimprefix":      stdlib.TrimPrefixFunc,
	"trimsuffix":      stdlib.TrimSuffixFunc,
	"try":             tryfunc.TryFunc,
	"upper":           stdlib.UpperFunc,
}

// requestType and requesterType are the shapes of the auto_approve variables.
var (
	requestType = cty.Object(map[string]cty.Type{
		"role":          cty.String,
		"duration":      cty.Number,
		"justification": cty.String,
		"ticket":        cty.String,
		"renewal":       cty.Bool,
	})
	requesterType = cty.Object(map[string]cty.Type{
		"id":     cty.String,
		"groups": cty.List(cty.String),
	})
)

// autoApproveContext returns the evaluation context for auto_approve.
func autoApproveContext(request, requester cty.Value) *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"request": request, "requester": requester},
		Functions: autoApproveFunctions,
	}
}
