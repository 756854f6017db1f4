package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// End-to-end tests run the real elevate binary. It is built once per test
// binary run, into a temporary directory that TestMain removes afterwards.

var (
	binOnce sync.Once
	binPath string
	binDir  string
	binErr  error
)

// TestMain removes the binary that elevateBin built. It is the app package's
// only TestMain; add any other package-wide setup here.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// elevateBin returns the path of the elevate binary built from this tree,
// building it on first use. A failed build fails every test that asks.
func elevateBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			binErr = err
			return
		}
		binDir, err = os.MkdirTemp("", "elevate-e2e-")
		if err != nil {
			binErr = fmt.Errorf("creating build directory: %w", err)
			return
		}
		binPath = filepath.Join(binDir, "elevate")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/elevate")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("building elevate: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// runElevate runs the elevate binary in dir with args. env entries
// ("KEY=value") are added to the test process's environment and override it.
// It fails the test if the binary cannot be started or runs for over a minute.
func runElevate(t testing.TB, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin := elevateBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout = &outBuf
	cmd.Stderr = &errBuf
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		t.Fatalf("elevate %q timed out\nstdout:\n%s\nstderr:\n%s", args, outBuf.String(), errBuf.String())
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("running elevate %q: %v", args, err)
	}
	return outBuf.String(), errBuf.String(), code
}

// moduleRoot finds the directory holding go.mod, walking up from the working
// directory (go test runs in the package directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
