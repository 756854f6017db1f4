package gcpemu_test

import (
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"

	"github.com/elevatehq/elevate/providers/gcp/gcpemu"
)

// BenchmarkReadModifyWrite measures one version 3 read-modify-write of a
// policy with 50 conditional bindings through the SDK over loopback.
func BenchmarkReadModifyWrite(b *testing.B) {
	e := newEnv(b, gcpemu.Options{})
	res := e.emu.CreateProject("p1")
	var bs []*iampb.Binding
	for i := range 50 {
		bs = append(bs, &iampb.Binding{Role: "roles/cloudsql.admin", Members: []string{fmt.Sprintf("user:u%d@example.com", i)},
			Condition: expiring(fmt.Sprintf("elevate:g%d", i), base.Add(time.Hour))})
	}
	if _, err := e.set(res, &iampb.Policy{Version: 3, Bindings: bs}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		p, err := e.projects.GetIamPolicy(e.ctx, &iampb.GetIamPolicyRequest{Resource: res, Options: &iampb.GetPolicyOptions{RequestedPolicyVersion: 3}})
		if err != nil {
			b.Fatal(err)
		}
		p.Bindings[i%50].Condition.Expression = fmt.Sprintf("request.time < timestamp('%s')", base.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
		if _, err := e.set(res, p); err != nil {
			b.Fatal(err)
		}
	}
}
