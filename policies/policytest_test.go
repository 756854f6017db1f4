package policies

import (
	"strings"
	"testing"
)

const testBlocks = `
role "db" {}

jit "db-oncall" {
  roles          = ["db"]
  requesters     = ["group:sre@example.com"]
  max_duration   = "1h"
  ticket_pattern = "^INC-[0-9]+$"
  approval {
    approvers    = ["group:sre-leads@example.com"]
    auto_approve = request.duration <= 900
  }
}

test "short request auto-approved" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com"]
    role          = "db"
    duration      = "15m"
    justification = "INC-1"
    ticket        = "INC-1"
  }
  expect        = "allowed"
  expect_policy = "db-oncall"
}

test "long request needs approval" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com"]
    role          = "db"
    justification = "INC-1"
    ticket        = "INC-1"
  }
  expect = "needs_approval"
}

test "outsider denied" {
  request {
    requester = "user:eve@example.com"
    role      = "db"
  }
  expect         = "denied"
  expect_reasons = ["not-eligible"]
}

test "wrong decision" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com"]
    role          = "db"
    duration      = "2h"
    justification = "x"
    ticket        = "INC-1"
  }
  expect = "allowed"
}

test "wrong policy" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com"]
    role          = "db"
    duration      = "10m"
    justification = "x"
    ticket        = "INC-1"
  }
  expect        = "allowed"
  expect_policy = "db-self"
}

test "missing reason" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com"]
    role          = "db"
    justification = "x"
  }
  expect         = "denied"
  expect_reasons = ["ticket-invalid", "duration-exceeds-max"]
}

test "unknown reason code" {
  request {
    requester = "user:eve@example.com"
    role      = "db"
  }
  expect         = "denied"
  expect_reasons = ["not-elligible"]
}

test "renewal" {
  request {
    requester     = "user:alice@example.com"
    groups        = ["group:sre@example.com"]
    role          = "db"
    justification = "x"
    ticket        = "INC-2"
    renewal       = true
  }
  expect         = "denied"
  expect_reasons = ["renewals-exhausted"]
}
`

func TestRunTests(t *testing.T) {
	set := loadSet(t, testBlocks)
	results := RunTests(set)
	want := []struct {
		name    string
		passed  bool
		failure []string // substrings of the failure message
	}{
		{name: "short request auto-approved", passed: true},
		{name: "long request needs approval", passed: true},
		{name: "outsider denied", passed: true},
		{name: "wrong decision", failure: []string{"expected allowed, got denied by \"db-oncall\"", "duration-exceeds-max"}},
		{name: "wrong policy", failure: []string{`expected policy "db-self" to decide, got "db-oncall"`, `got allowed by "db-oncall" (auto-approved)`}},
		{name: "missing reason", failure: []string{"expected reason duration-exceeds-max, got ticket-invalid:"}},
		{name: "unknown reason code", failure: []string{"unknown reason not-elligible", "known reasons are not-eligible,"}},
		{name: "renewal", passed: true},
	}
	if len(results) != len(want) {
		t.Fatalf("got %d results, want %d", len(results), len(want))
	}
	for i, w := range want {
		r := results[i]
		if r.Test.Name != w.name {
			t.Errorf("result %d is %q, want %q (declaration order)", i, r.Test.Name, w.name)
			continue
		}
		if r.Passed != w.passed {
			t.Errorf("%q passed = %v, want %v (failure %q)", w.name, r.Passed, w.passed, r.Failure)
		}
		if w.passed && r.Failure != "" {
			t.Errorf("%q passed but has failure %q", w.name, r.Failure)
		}
		for _, sub := range w.failure {
			if !strings.Contains(r.Failure, sub) {
				t.Errorf("%q failure %q does not contain %q", w.name, r.Failure, sub)
			}
		}
	}
}

func TestRunTestsEmpty(t *testing.T) {
	set := loadSet(t, `role "db" {}`)
	if got := RunTests(set); len(got) != 0 {
		t.Errorf("RunTests on a set without tests = %v", got)
	}
}
