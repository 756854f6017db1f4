package app

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
)

// The memory emulator's client decodes an observe answer binding by
// binding: it must return what the emulator's provider holds, share the
// strings of the targets it asked for, and keep the error kinds.
func TestRemoteMemoryObserve(t *testing.T) {
	emu := newMemoryEmulator([]model.Cloud{model.CloudGCP}, false)
	srv := httptest.NewServer(emu)
	defer srv.Close()
	p := emu.providers[model.CloudGCP]
	viewer := model.Target{Cloud: model.CloudGCP, Scope: "projects/a", Role: "roles/viewer"}
	editor := model.Target{Cloud: model.CloudGCP, Scope: "projects/a", Role: "roles/editor"}
	other := model.Target{Cloud: model.CloudGCP, Scope: "projects/b", Role: "roles/viewer"}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, b := range []model.Binding{
		{Target: viewer, Principal: model.MustPrincipal("user:alice@example.com"), Owner: "g1", NotBefore: start, Expires: start.Add(time.Hour)},
		{Target: editor, Principal: model.MustPrincipal("group:sre@example.com"), Owner: "g2", Expires: start.Add(time.Minute)},
		{Target: other, Principal: model.MustPrincipal("user:bob@example.com"), Owner: "g3", Expires: start.Add(time.Hour)},
	} {
		if err := p.Put(b); err != nil {
			t.Fatalf("binding %d: %v", i, err)
		}
	}
	if err := p.AddUnmanaged(model.Binding{Target: viewer, Principal: model.MustPrincipal("user:carol@example.com")}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client := newRemoteMemory(model.CloudGCP, srv.URL)
	scope := viewer.ScopeKey()
	// Fresh copies of the targets, so that sharing is visible.
	targets := []model.Target{
		{Cloud: model.Cloud(string([]byte("gcp"))), Scope: string([]byte(viewer.Scope)), Role: string([]byte(viewer.Role))},
		{Cloud: model.Cloud(string([]byte("gcp"))), Scope: string([]byte(editor.Scope)), Role: string([]byte(editor.Role))},
	}
	want, err := p.Observe(ctx, scope, targets)
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.Observe(ctx, scope, targets)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 {
		t.Fatalf("the provider holds %d bindings in %s, want 3", len(want), scope)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observed over the wire (-provider +client):\n%s", diff)
	}
	for _, b := range got {
		i := 0
		if b.Target.Role == editor.Role {
			i = 1
		}
		if unsafe.StringData(b.Target.Scope) != unsafe.StringData(targets[i].Scope) ||
			unsafe.StringData(b.Target.Role) != unsafe.StringData(targets[i].Role) {
			t.Errorf("binding %v holds its own copy of the target's strings", b.Target)
		}
	}

	empty, err := client.Observe(ctx, model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/empty"}, nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("observing an empty scope: %v, %v", empty, err)
	}

	p.FailNext(providers.Throttled(errors.New("slow down"), 2*time.Second))
	_, err = client.Observe(ctx, scope, targets)
	if !providers.IsTransient(err) || providers.RetryAfterOf(err) != 2*time.Second {
		t.Errorf("a throttled read came back as %v (transient %v, retry after %s)", err, providers.IsTransient(err), providers.RetryAfterOf(err))
	}
	if _, err := newRemoteMemory(model.CloudAzure, srv.URL).Observe(ctx, model.ScopeKey{Cloud: model.CloudAzure, Scope: "/subscriptions/x"}, nil); !errors.Is(err, providers.ErrInvalidChange) {
		t.Errorf("observing a cloud the emulator does not serve: %v", err)
	}
}
