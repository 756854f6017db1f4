package policies

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/elevatehq/elevate/model"
)

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "settings"},
		{Type: "role", LabelNames: []string{"name"}},
		{Type: "jit", LabelNames: []string{"name"}},
		{Type: "temporary", LabelNames: []string{"name"}},
		{Type: "break_glass", LabelNames: []string{"name"}},
		{Type: "notifier", LabelNames: []string{"name"}},
		{Type: "test", LabelNames: []string{"name"}},
	},
}

var settingsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "jit_duration_cap"}, {Name: "temporary_duration_cap"}, {Name: "renewal_cap"}, {Name: "breakglass_max_accounts"},
}}

var roleSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "description"}, {Name: "privileged"}, {Name: "standing"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "gcp"}, {Type: "aws"}, {Type: "azure"}},
}

var gcpSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "resource", Required: true}, {Name: "role", Required: true},
}}

var awsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "account", Required: true}, {Name: "role_name"}, {Name: "instance_arn"}, {Name: "permission_set"},
}}

var azureSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "scope", Required: true}, {Name: "role_definition", Required: true}, {Name: "pim"},
}}

var jitSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "description"}, {Name: "roles", Required: true}, {Name: "requesters", Required: true},
		{Name: "max_duration"}, {Name: "default_duration"}, {Name: "justification"},
		{Name: "ticket_pattern"}, {Name: "max_renewals"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "approval"}},
}

var approvalSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "approvers", Required: true}, {Name: "min_approvals"}, {Name: "auto_approve"},
}}

var temporarySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "role", Required: true}, {Name: "principals", Required: true}, {Name: "starts"},
	{Name: "expires"}, {Name: "justification"}, {Name: "approved_by"},
}}

var breakGlassSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "description"}, {Name: "reasons"}, {Name: "accounts", Required: true}, {Name: "roles"},
	{Name: "session_recording"}, {Name: "review_within"}, {Name: "max_uses"}, {Name: "use_window"},
	{Name: "notify"},
}}

var notifierSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "type", Required: true}, {Name: "url_env", Required: true}, {Name: "secret_env"},
}}

var testSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "expect", Required: true}, {Name: "expect_policy"}, {Name: "expect_reasons"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "request"}},
}

var testRequestSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "requester", Required: true}, {Name: "groups"}, {Name: "role", Required: true},
	{Name: "duration"}, {Name: "justification"}, {Name: "ticket"}, {Name: "renewal"}, {Name: "renewals"},
}}

var (
	gcpResourceRE = regexp.MustCompile(`^(projects|folders|organizations)/[A-Za-z0-9_.:-]+$`)
	awsAccountRE  = regexp.MustCompile(`^[0-9]{12}$`)
	awsRoleNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	ssoInstanceRE = regexp.MustCompile(`^arn:aws[a-z-]*:sso:::instance/(sso)?ins-[a-zA-Z0-9.-]{16}$`)
	ssoPermSetRE  = regexp.MustCompile(`^arn:aws[a-z-]*:sso:::permissionSet/(sso)?ins-[a-zA-Z0-9.-]{16}/ps-[a-zA-Z0-9.-]{16}$`)
	azureScopeRE  = regexp.MustCompile(`^/(subscriptions/[0-9a-fA-F-]{36}(/resourceGroups/[^/]+(/providers/.+)?)?|providers/Microsoft\.Management/managementGroups/[^/]+)?$`)
	envVarRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	blockNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\- ]*$`)
)

// decoder turns parsed files into a Set, collecting diagnostics.
type decoder struct {
	set      *Set
	diags    *Diagnostics
	settings *hcl.Block
}

func (d *decoder) decodeFile(f *hcl.File) {
	content, hdiags := f.Body.Content(fileSchema)
	d.diags.fromHCL(RuleSchema, hdiags)
	for _, b := range content.Blocks {
		switch b.Type {
		case "settings":
			if d.settings != nil {
				d.diags.errorf(RuleSchema, b.DefRange, "Duplicate settings block",
					"Only one settings block is allowed in a policy set; the first is at %s. Merge them.", d.settings.DefRange)
				continue
			}
			d.settings = b
			d.decodeSettings(b)
		case "role":
			if r := d.decodeRole(b); r != nil {
				d.set.Roles = append(d.set.Roles, r)
			}
		case "jit":
			if j := d.decodeJIT(b); j != nil {
				d.set.JIT = append(d.set.JIT, j)
			}
		case "temporary":
			if t := d.decodeTemporary(b); t != nil {
				d.set.Temporary = append(d.set.Temporary, t)
			}
		case "break_glass":
			if bg := d.decodeBreakGlass(b); bg != nil {
				d.set.BreakGlass = append(d.set.BreakGlass, bg)
			}
		case "notifier":
			if n := d.decodeNotifier(b); n != nil {
				d.set.Notifiers = append(d.set.Notifiers, n)
			}
		case "test":
			if t := d.decodeTest(b); t != nil {
				d.set.Tests = append(d.set.Tests, t)
			}
		}
	}
}

// finish fills in defaults that depend on the whole set.
func (d *decoder) finish() {
	s := &d.set.Settings
	if s.JITDurationCap == 0 {
		s.JITDurationCap = DefaultJITDurationCap
	}
	if s.TemporaryDurationCap == 0 {
		s.TemporaryDurationCap = DefaultTemporaryDurationCap
	}
	if s.Attrs == nil || !hasKey(s.Attrs, "renewal_cap") {
		s.RenewalCap = DefaultRenewalCap
	}
	if s.BreakglassMaxAccounts == 0 {
		s.BreakglassMaxAccounts = DefaultBreakglassMaxAccounts
	}
}

func hasKey(m map[string]hcl.Range, k string) bool { _, ok := m[k]; return ok }

// content decodes a block body against schema and records attribute ranges.
func (d *decoder) content(b *hcl.Block, schema *hcl.BodySchema) (*hcl.BodyContent, map[string]hcl.Range) {
	c, hdiags := b.Body.Content(schema)
	d.diags.fromHCL(RuleSchema, hdiags)
	attrs := make(map[string]hcl.Range, len(c.Attributes))
	for name, a := range c.Attributes {
		attrs[name] = a.Range
	}
	return c, attrs
}

func (d *decoder) block(b *hcl.Block, attrs map[string]hcl.Range) Block {
	blk := Block{Attrs: attrs}
	blk.DeclRange = b.DefRange
	if len(b.Labels) > 0 {
		blk.Name = b.Labels[0]
		blk.NameRange = b.LabelRanges[0]
		switch {
		case b.Type == "test":
			// Test names are sentences people read in `elevate test` output.
			if strings.TrimSpace(blk.Name) == "" || strings.ContainsAny(blk.Name, "\n\r") {
				d.diags.errorf(RuleSchema, blk.NameRange, "Invalid test name",
					"A test name is a one-line description of what the test checks; got %q.", blk.Name)
			}
		case !blockNameRE.MatchString(blk.Name):
			d.diags.errorf(RuleSchema, blk.NameRange, "Invalid block name",
				"%s names must start with a letter or digit and contain only letters, digits, spaces and . _ -; got %q.", b.Type, blk.Name)
		}
	}
	return blk
}

// value evaluates a literal attribute and converts it to want. It returns
// false (with a diagnostic) when the value is missing, null or ill-typed.
func (d *decoder) value(a *hcl.Attribute, want cty.Type) (cty.Value, bool) {
	if a == nil {
		return cty.NilVal, false
	}
	v, hdiags := a.Expr.Value(nil)
	if hdiags.HasErrors() {
		d.diags.fromHCL(RuleSchema, hdiags)
		return cty.NilVal, false
	}
	if v.IsNull() {
		// A null would otherwise read as "not set" and slip past required
		// attributes such as max_duration.
		d.diags.errorf(RuleSchema, a.Expr.Range(), "Missing attribute value",
			"%s is null: set a value, or remove the attribute to use its default.", a.Name)
		return cty.NilVal, false
	}
	cv, err := convert.Convert(v, want)
	if err != nil {
		d.diags.errorf(RuleSchema, a.Expr.Range(), "Incorrect attribute value type",
			"%s must be %s: %s.", a.Name, friendlyType(want), err)
		return cty.NilVal, false
	}
	return cv, true
}

func friendlyType(t cty.Type) string {
	switch {
	case t == cty.String:
		return "a string"
	case t == cty.Bool:
		return "true or false"
	case t == cty.Number:
		return "a whole number"
	case t.IsListType():
		return "a list of " + strings.TrimPrefix(friendlyType(t.ElementType()), "a ") + "s"
	}
	return t.FriendlyName()
}

func (d *decoder) str(c *hcl.BodyContent, name string) (string, bool) {
	v, ok := d.value(c.Attributes[name], cty.String)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

func (d *decoder) boolean(c *hcl.BodyContent, name string, def bool) bool {
	v, ok := d.value(c.Attributes[name], cty.Bool)
	if !ok {
		return def
	}
	return v.True()
}

// integer decodes a whole number no smaller than min.
func (d *decoder) integer(c *hcl.BodyContent, name string, def, min int) int {
	a := c.Attributes[name]
	v, ok := d.value(a, cty.Number)
	if !ok {
		return def
	}
	bf := v.AsBigFloat()
	i, acc := bf.Int64()
	if !bf.IsInt() || acc != 0 || i < int64(min) || i > 1<<31 {
		d.diags.errorf(RuleSchema, a.Expr.Range(), "Invalid number",
			"%s must be a whole number of at least %d; got %s.", name, min, bf.Text('g', 10))
		return def
	}
	return int(i)
}

// duration decodes a positive duration string.
func (d *decoder) duration(c *hcl.BodyContent, name string) time.Duration {
	a := c.Attributes[name]
	s, ok := d.str(c, name)
	if !ok {
		return 0
	}
	dur, err := model.ParseDuration(s)
	if err != nil {
		d.diags.errorf(RuleSchema, a.Expr.Range(), "Invalid duration", "%s: %s.", name, err)
		return 0
	}
	if dur <= 0 {
		d.diags.errorf(RuleSchema, a.Expr.Range(), "Invalid duration", "%s must be longer than zero.", name)
	}
	return dur
}

// timestamp decodes an RFC 3339 UTC time.
func (d *decoder) timestamp(c *hcl.BodyContent, name string) time.Time {
	a := c.Attributes[name]
	s, ok := d.str(c, name)
	if !ok {
		return time.Time{}
	}
	t, err := model.ParseTime(s)
	if err != nil {
		d.diags.errorf(RuleSchema, a.Expr.Range(), "Invalid time", "%s: %s.", name, err)
	}
	return t
}

// stringList decodes a list of strings with one range per element.
func (d *decoder) stringList(c *hcl.BodyContent, name string) ([]string, []hcl.Range) {
	a := c.Attributes[name]
	if a == nil {
		return nil, nil
	}
	exprs, hdiags := hcl.ExprList(a.Expr)
	if hdiags.HasErrors() {
		// Not a literal list: let value() report the type problem.
		if v, ok := d.value(a, cty.List(cty.String)); ok {
			var out []string
			var rngs []hcl.Range
			for _, e := range v.AsValueSlice() {
				if !e.IsNull() {
					out = append(out, e.AsString())
					rngs = append(rngs, a.Expr.Range())
				}
			}
			return out, rngs
		}
		return nil, nil
	}
	out := make([]string, 0, len(exprs))
	rngs := make([]hcl.Range, 0, len(exprs))
	for _, e := range exprs {
		v, hd := e.Value(nil)
		if hd.HasErrors() {
			d.diags.fromHCL(RuleSchema, hd)
			continue
		}
		cv, err := convert.Convert(v, cty.String)
		if err != nil || cv.IsNull() {
			d.diags.errorf(RuleSchema, e.Range(), "Incorrect attribute value type",
				"Every element of %s must be a string.", name)
			continue
		}
		out = append(out, cv.AsString())
		rngs = append(rngs, e.Range())
	}
	return out, rngs
}

func (d *decoder) names(c *hcl.BodyContent, name string) []NameRef {
	vals, rngs := d.stringList(c, name)
	out := make([]NameRef, 0, len(vals))
	for i, v := range vals {
		if v == "" {
			d.diags.errorf(RuleSchema, rngs[i], "Empty name", "%s must not contain empty names.", name)
			continue
		}
		out = append(out, NameRef{Name: v, Range: rngs[i]})
	}
	return out
}

func (d *decoder) principals(c *hcl.BodyContent, name string) []PrincipalRef {
	vals, rngs := d.stringList(c, name)
	out := make([]PrincipalRef, 0, len(vals))
	for i, v := range vals {
		p, err := model.ParsePrincipal(v)
		if err != nil {
			d.diags.errorf(RuleSchema, rngs[i], "Invalid principal", "%s.", err)
			continue
		}
		out = append(out, PrincipalRef{Principal: p, Range: rngs[i]})
	}
	return out
}

func (d *decoder) principal(c *hcl.BodyContent, name string) model.Principal {
	s, ok := d.str(c, name)
	if !ok {
		return model.Principal{}
	}
	p, err := model.ParsePrincipal(s)
	if err != nil {
		d.diags.errorf(RuleSchema, c.Attributes[name].Expr.Range(), "Invalid principal", "%s.", err)
	}
	return p
}

// match checks a string attribute against re, reporting hint on mismatch.
func (d *decoder) match(c *hcl.BodyContent, name string, re *regexp.Regexp, hint string) string {
	s, ok := d.str(c, name)
	if !ok {
		return ""
	}
	if !re.MatchString(s) {
		d.diags.errorf(RuleSchema, c.Attributes[name].Expr.Range(), "Invalid "+strings.ReplaceAll(name, "_", " "),
			"%q is not valid: %s.", s, hint)
	}
	return s
}

func (d *decoder) oneOf(c *hcl.BodyContent, name, def string, allowed ...string) string {
	s, ok := d.str(c, name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.diags.errorf(RuleSchema, c.Attributes[name].Expr.Range(), "Invalid "+name,
		"%s must be one of %s; got %q.", name, quoteList(allowed), s)
	return def
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

func (d *decoder) decodeSettings(b *hcl.Block) {
	c, attrs := d.content(b, settingsSchema)
	s := &d.set.Settings
	s.DeclRange = b.DefRange
	s.Attrs = attrs
	s.JITDurationCap = d.duration(c, "jit_duration_cap")
	s.TemporaryDurationCap = d.duration(c, "temporary_duration_cap")
	s.RenewalCap = d.integer(c, "renewal_cap", DefaultRenewalCap, 0)
	s.BreakglassMaxAccounts = d.integer(c, "breakglass_max_accounts", DefaultBreakglassMaxAccounts, 1)
}

func (d *decoder) decodeRole(b *hcl.Block) *Role {
	c, attrs := d.content(b, roleSchema)
	r := &Role{Block: d.block(b, attrs)}
	r.Description, _ = d.str(c, "description")
	r.Privileged = d.boolean(c, "privileged", false)
	r.Standing = d.oneOf(c, "standing", StandingReport, StandingReport, StandingRemove)
	for _, tb := range c.Blocks {
		switch tb.Type {
		case "gcp":
			tc, _ := d.content(tb, gcpSchema)
			t := &GCPTarget{DeclRange: tb.DefRange}
			t.Resource = d.match(tc, "resource", gcpResourceRE, "write projects/PROJECT_ID, folders/FOLDER_ID or organizations/ORG_ID")
			t.Role, _ = d.str(tc, "role")
			if a := tc.Attributes["role"]; a != nil {
				t.RoleRange = a.Expr.Range()
			}
			if a := tc.Attributes["role"]; a != nil && t.Role != "" && !strings.HasPrefix(t.Role, "roles/") &&
				!strings.Contains(t.Role, "/roles/") {
				d.diags.errorf(RuleSchema, a.Expr.Range(), "Invalid GCP role",
					"%q is not a GCP role: write roles/NAME, projects/P/roles/NAME or organizations/O/roles/NAME.", t.Role)
			}
			r.GCP = append(r.GCP, t)
		case "aws":
			tc, _ := d.content(tb, awsSchema)
			t := &AWSTarget{DeclRange: tb.DefRange}
			t.Account = d.match(tc, "account", awsAccountRE, "an AWS account ID is 12 digits")
			t.RoleName = d.match(tc, "role_name", awsRoleNameRE, "IAM role names are 1-64 characters of letters, digits and +=,.@_-")
			t.InstanceARN = d.match(tc, "instance_arn", ssoInstanceRE, "write arn:aws:sso:::instance/ssoins-XXXXXXXXXXXXXXXX")
			t.PermissionSet = d.match(tc, "permission_set", ssoPermSetRE, "write arn:aws:sso:::permissionSet/ssoins-XXXXXXXXXXXXXXXX/ps-XXXXXXXXXXXXXXXX")
			hasRole, hasIC := tc.Attributes["role_name"] != nil, tc.Attributes["instance_arn"] != nil || tc.Attributes["permission_set"] != nil
			switch {
			case hasRole && hasIC:
				d.diags.errorf(RuleSchema, tb.DefRange, "Conflicting AWS target modes",
					"An aws block is either an IAM role (role_name) or an Identity Center assignment (instance_arn and permission_set), not both. Split it into two aws blocks.")
			case !hasRole && !hasIC:
				d.diags.errorf(RuleSchema, tb.DefRange, "Incomplete AWS target",
					"Set role_name for assume-role mode, or instance_arn and permission_set for Identity Center mode.")
			case hasIC && (tc.Attributes["instance_arn"] == nil || tc.Attributes["permission_set"] == nil):
				d.diags.errorf(RuleSchema, tb.DefRange, "Incomplete AWS target",
					"Identity Center mode needs both instance_arn and permission_set.")
			}
			r.AWS = append(r.AWS, t)
		case "azure":
			tc, _ := d.content(tb, azureSchema)
			t := &AzureTarget{DeclRange: tb.DefRange}
			t.Scope = d.match(tc, "scope", azureScopeRE, "write /subscriptions/GUID, /subscriptions/GUID/resourceGroups/NAME[/providers/…] or /providers/Microsoft.Management/managementGroups/NAME")
			t.RoleDefinition, _ = d.str(tc, "role_definition")
			if a := tc.Attributes["role_definition"]; a != nil && strings.TrimSpace(t.RoleDefinition) == "" {
				d.diags.errorf(RuleSchema, a.Expr.Range(), "Invalid role definition", "role_definition must name a built-in role or give a role definition ID.")
			}
			t.PIM = d.boolean(tc, "pim", true)
			r.Azure = append(r.Azure, t)
		}
	}
	return r
}

func (d *decoder) decodeJIT(b *hcl.Block) *JIT {
	c, attrs := d.content(b, jitSchema)
	j := &JIT{Block: d.block(b, attrs)}
	j.Description, _ = d.str(c, "description")
	j.Roles = d.names(c, "roles")
	j.Requesters = d.principals(c, "requesters")
	j.MaxDuration = d.duration(c, "max_duration")
	j.DefaultDuration = d.duration(c, "default_duration")
	j.Justification = d.boolean(c, "justification", true)
	if s, ok := d.str(c, "ticket_pattern"); ok {
		re, err := regexp.Compile(s)
		if err != nil {
			d.diags.errorf(RuleSchema, c.Attributes["ticket_pattern"].Expr.Range(), "Invalid regular expression",
				"ticket_pattern %q does not compile: %s. Use Go (RE2) syntax, e.g. \"^(INC|CHG)-[0-9]+$\".", s, err)
		} else {
			j.TicketPattern = re
		}
	}
	j.MaxRenewals = d.integer(c, "max_renewals", 0, 0)
	for _, ab := range c.Blocks {
		if j.Approval != nil {
			d.diags.errorf(RuleSchema, ab.DefRange, "Duplicate approval block", "A jit policy has at most one approval block.")
			continue
		}
		j.Approval = d.decodeApproval(ab)
	}
	return j
}

func (d *decoder) decodeApproval(b *hcl.Block) *Approval {
	c, attrs := d.content(b, approvalSchema)
	a := &Approval{DeclRange: b.DefRange, Attrs: attrs}
	a.Approvers = d.principals(c, "approvers")
	a.MinApprovals = d.integer(c, "min_approvals", 1, 1)
	if attr := c.Attributes["auto_approve"]; attr != nil {
		if d.checkAutoApprove(attr) {
			a.AutoApprove = attr.Expr
		}
	}
	return a
}

// checkAutoApprove verifies that an auto_approve expression refers only to
// request and requester and yields a bool, by evaluating it over unknown
// values of the right types.
func (d *decoder) checkAutoApprove(attr *hcl.Attribute) bool {
	ok := true
	for _, tr := range attr.Expr.Variables() {
		if root := tr.RootName(); root != "request" && root != "requester" {
			d.diags.errorf(RuleSchema, tr.SourceRange(), "Unknown variable in auto_approve",
				"auto_approve can use request.{role, duration, justification, ticket, renewal} and requester.{id, groups}; %q is not available.", root)
			ok = false
		}
	}
	if !ok {
		return false
	}
	v, hdiags := attr.Expr.Value(autoApproveContext(cty.UnknownVal(requestType), cty.UnknownVal(requesterType)))
	if hdiags.HasErrors() {
		d.diags.fromHCL(RuleSchema, hdiags)
		return false
	}
	if _, err := convert.Convert(v, cty.Bool); err != nil {
		d.diags.errorf(RuleSchema, attr.Expr.Range(), "auto_approve must be a condition",
			"auto_approve must evaluate to true or false, not %s. Write a comparison such as request.duration <= 900.", v.Type().FriendlyName())
		return false
	}
	if v.IsKnown() && v.IsNull() {
		// A literal null would read as "no auto_approve" and fail on every request.
		d.diags.errorf(RuleSchema, attr.Expr.Range(), "auto_approve must be a condition",
			"auto_approve is null. Write a condition such as request.duration <= 900, or remove auto_approve.")
		return false
	}
	return true
}

func (d *decoder) decodeTemporary(b *hcl.Block) *Temporary {
	c, attrs := d.content(b, temporarySchema)
	t := &Temporary{Block: d.block(b, attrs)}
	if s, ok := d.str(c, "role"); ok {
		t.Role = NameRef{Name: s, Range: c.Attributes["role"].Expr.Range()}
	}
	t.Principals = d.principals(c, "principals")
	t.Starts = d.timestamp(c, "starts")
	t.Expires = d.timestamp(c, "expires")
	t.Justification, _ = d.str(c, "justification")
	t.ApprovedBy = d.principals(c, "approved_by")
	return t
}

func (d *decoder) decodeBreakGlass(b *hcl.Block) *BreakGlass {
	c, attrs := d.content(b, breakGlassSchema)
	bg := &BreakGlass{Block: d.block(b, attrs)}
	bg.Description, _ = d.str(c, "description")
	bg.Reasons, _ = d.stringList(c, "reasons")
	bg.Accounts = d.principals(c, "accounts")
	bg.Roles = d.names(c, "roles")
	bg.SessionRecording = d.boolean(c, "session_recording", false)
	bg.ReviewWithin = d.duration(c, "review_within")
	bg.MaxUses = d.integer(c, "max_uses", 0, 1)
	bg.UseWindow = d.duration(c, "use_window")
	bg.Notify = d.names(c, "notify")
	if bg.Has("max_uses") && !bg.Has("use_window") {
		d.diags.errorf(RuleSchema, bg.AttrRange("max_uses"), "max_uses needs use_window",
			"max_uses counts uses within a window: set use_window too, e.g. use_window = \"30d\".")
	}
	return bg
}

func (d *decoder) decodeNotifier(b *hcl.Block) *Notifier {
	c, attrs := d.content(b, notifierSchema)
	n := &Notifier{Block: d.block(b, attrs)}
	n.Type = d.oneOf(c, "type", "", NotifierWebhook, NotifierSlack)
	n.URLEnv = d.match(c, "url_env", envVarRE, "name an environment variable that holds the URL, such as SECURITY_WEBHOOK_URL")
	n.SecretEnv = d.match(c, "secret_env", envVarRE, "name an environment variable that holds the signing key")
	return n
}

func (d *decoder) decodeTest(b *hcl.Block) *Test {
	c, attrs := d.content(b, testSchema)
	t := &Test{Block: d.block(b, attrs)}
	t.Expect = Decision(d.oneOf(c, "expect", "", string(DecisionAllowed), string(DecisionNeedsApproval), string(DecisionDenied)))
	t.ExpectPolicy, _ = d.str(c, "expect_policy")
	t.ExpectReasons, _ = d.stringList(c, "expect_reasons")
	var reqs []*hcl.Block
	for _, rb := range c.Blocks {
		reqs = append(reqs, rb)
	}
	switch len(reqs) {
	case 0:
		d.diags.errorf(RuleSchema, b.DefRange, "Missing request block", "A test needs one request block describing the request to evaluate.")
		return t
	case 1:
	default:
		d.diags.errorf(RuleSchema, reqs[1].DefRange, "Duplicate request block", "A test has exactly one request block; write another test for another request.")
	}
	rc, rattrs := d.content(reqs[0], testRequestSchema)
	r := &t.Request
	r.DeclRange = reqs[0].DefRange
	r.Attrs = rattrs
	r.Requester = d.principal(rc, "requester")
	for _, g := range d.principals(rc, "groups") {
		r.Groups = append(r.Groups, g.Principal)
	}
	r.Role, _ = d.str(rc, "role")
	r.Duration = d.duration(rc, "duration")
	r.Justification, _ = d.str(rc, "justification")
	r.Ticket, _ = d.str(rc, "ticket")
	r.Renewal = d.boolean(rc, "renewal", false)
	r.Renewals = d.integer(rc, "renewals", 0, 0)
	return t
}
