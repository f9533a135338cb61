package static

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// wasmPackage is the browser front end Build compiles.
const wasmPackage = "github.com/linksim/linksim/webclient/wasm"

// BuildOptions vary a Build; the zero value builds the app as shipped.
type BuildOptions struct {
	// Names keeps the module's name section (function names; about 3% of
	// app.wasm), which CPU profiles of the page need to name anything.
	Names bool
	// Package is the main package compiled into app.wasm, by import path:
	// "" is the web app (webclient/wasm); another page built and served
	// as the app is, such as webclient/floor, is measured against it.
	Package string
}

// Build compiles the web app into outDir (app.wasm, its gzip app.wasm.gz
// and Go's wasm_exec.js), ready for Handler(key, os.DirFS(outDir)). It runs
// the go command, so it needs the Go toolchain and the linksim module
// source: it builds from the current directory when that is inside the
// module, else from this package's source directory. A build takes tens of
// seconds; callers build once and reuse the directory.
func Build(ctx context.Context, outDir string, opts BuildOptions) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("build web app: %w", err)
	}
	wasm, err := filepath.Abs(filepath.Join(outDir, fileWasm))
	if err != nil {
		return fmt.Errorf("build web app: %w", err)
	}
	ldflags := "-ldflags=-s -w"
	if opts.Names {
		ldflags = "-ldflags="
	}
	pkg := wasmPackage
	if opts.Package != "" {
		pkg = opts.Package
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", ldflags, "-o", wasm, pkg)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	if !inModule(ctx) {
		cmd.Dir = sourceDir()
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build web app (GOOS=js GOARCH=wasm go build %s): %w\n%s", pkg, err, out)
	}
	if err := compress(wasm, filepath.Join(outDir, fileWasmGz)); err != nil {
		return fmt.Errorf("build web app: %w", err)
	}
	goroot, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("build web app: go env GOROOT: %w", err)
	}
	js, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", fileWasmJS))
	if err != nil {
		return fmt.Errorf("build web app: %w", err)
	}
	if err := os.WriteFile(filepath.Join(outDir, fileWasmJS), js, 0o644); err != nil {
		return fmt.Errorf("build web app: %w", err)
	}
	return nil
}

// inModule reports whether the go command run here sees the linksim module.
func inModule(ctx context.Context) bool {
	out, err := exec.CommandContext(ctx, "go", "list", "-m").Output()
	return err == nil && bytes.Equal(bytes.TrimSpace(out), []byte("github.com/linksim/linksim"))
}

// sourceDir is this package's source directory when it exists on this
// machine (a binary built with -trimpath does not know it), else "".
func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

// compress writes the gzip of file src to dst, for Handler to send to
// browsers that accept it.
func compress(src, dst string) error {
	raw, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // a valid level: no error
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, b.Bytes(), 0o644)
}
