package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writePolicy(t *testing.T, path string, roles ...string) {
	t.Helper()
	var body string
	for _, r := range roles {
		body += "role \"" + r + "\" {\n  gcp {\n    resource = \"projects/p\"\n    role     = \"roles/viewer\"\n  }\n}\n"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitRoles(t *testing.T, ps *policySource, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for len(ps.Current().Roles) != want {
		if time.Now().After(deadline) {
			t.Fatalf("the policy set has %d roles after %s, want %d", len(ps.Current().Roles), within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchSetUpBeforeReturn: a file written the moment Watch returns is
// reloaded by the file watcher, long before the poll would notice it.
func TestWatchSetUpBeforeReturn(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, filepath.Join(dir, "a.hcl"), "a")
	ps, diags := newPolicySource(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if ps == nil {
		t.Fatal(diags)
	}
	ps.pollEvery = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := ps.Watch(ctx)
	writePolicy(t, filepath.Join(dir, "b.hcl"), "b")
	waitRoles(t, ps, 2, 5*time.Second)
	cancel()
	<-done
}

// TestWatchPollsConfigMapSwap: a Kubernetes ConfigMap volume updates by
// renaming a hidden ..data symlink, which the file watcher ignores; the
// poll of sizes and modification times still picks the change up.
func TestWatchPollsConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, filepath.Join(dir, "..2026_11_29_v1", "roles.hcl"), "a")
	if err := os.Symlink("..2026_11_29_v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "roles.hcl"), filepath.Join(dir, "roles.hcl")); err != nil {
		t.Fatal(err)
	}
	ps, diags := newPolicySource(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if ps == nil {
		t.Fatal(diags)
	}
	if n := len(ps.Current().Roles); n != 1 {
		t.Fatalf("initial load: %d roles, want 1", n)
	}
	ps.pollEvery = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := ps.Watch(ctx)
	defer func() { cancel(); <-done }()

	// The kubelet's update: a new timestamped directory, a temporary
	// symlink to it, renamed over ..data.
	writePolicy(t, filepath.Join(dir, "..2026_11_29_v2", "roles.hcl"), "a", "b")
	if err := os.Symlink("..2026_11_29_v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, ps, 2, 5*time.Second)
	if last := ps.LastReload(); !last.OK {
		t.Fatalf("last reload not OK: %v", last.Diagnostics)
	}
}
