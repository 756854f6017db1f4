package policies

import "testing"

func TestBlockNames(t *testing.T) {
	src := `
role "db-admin" {}
role "bad/name" {}
test "sre, on call, gets 15 minutes: no waiting" {
  request {
    requester = "user:a@example.com"
    role      = "db-admin"
  }
  expect = "denied"
}
test " " {
  request {
    requester = "user:a@example.com"
    role      = "db-admin"
  }
  expect = "denied"
}
`
	set, diags := LoadSources([]string{"n.hcl"}, map[string][]byte{"n.hcl": []byte(src)})
	var lines []int
	for _, d := range diags {
		lines = append(lines, d.Range.Start.Line)
	}
	if len(diags) != 2 || lines[0] != 3 || lines[1] != 11 {
		t.Fatalf("want schema errors on lines 3 (role name) and 11 (blank test name), got %v", diags)
	}
	if len(set.Tests) != 2 || set.Tests[0].Name != "sre, on call, gets 15 minutes: no waiting" {
		t.Fatalf("test names with punctuation must load: %+v", set.Tests)
	}
}
