package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ArtifactsDir is where the artifacts of failed tests go:
// $LINKSIM_ARTIFACTS, else out/artifacts at the root of the module this
// runs in (go test runs in the package directory), else out/artifacts in
// the working directory.
func ArtifactsDir() string {
	if d := os.Getenv("LINKSIM_ARTIFACTS"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("out", "artifacts")
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "out", "artifacts")
		}
		if filepath.Dir(dir) == dir {
			return filepath.Join(wd, "out", "artifacts")
		}
	}
}

// failed reports whether the Env's test has failed; a TB that cannot say
// counts as passing, and keeps no artifacts.
func (e *Env) failed() bool {
	f, ok := e.t.(interface{ Failed() bool })
	return ok && f.Failed()
}

// keepArtifacts saves w's screenshot, DOM and console log when the test
// has failed (the TB's temp dir is deleted, so they go to ArtifactsDir).
func (e *Env) keepArtifacts(w *Web) {
	if !e.failed() {
		return
	}
	dir, err := e.SaveArtifacts(w)
	if err != nil {
		e.t.Logf("harness: keeping %s's artifacts: %v", w.name, err)
	}
	if dir != "" {
		e.t.Logf("harness: %s's screenshot, DOM and console log are in %s", w.name, dir)
	}
}

// keepRunArtifacts saves the relay's log and this Env's event timeline
// when the test has failed.
func (e *Env) keepRunArtifacts() {
	if !e.failed() {
		return
	}
	dir := e.artifactsDir()
	events, err := json.MarshalIndent(e.rec.rec.Events(), "", " ")
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = errors.Join(os.WriteFile(filepath.Join(dir, "relay.log"), e.RelayLog(), 0o644),
			os.WriteFile(filepath.Join(dir, "events.json"), events, 0o644))
	}
	if err != nil {
		e.t.Logf("harness: keeping the relay log and events: %v", err)
		return
	}
	e.t.Logf("harness: the relay log and event timeline are in %s", dir)
}

// Artifacts is the folder this Env's failure artifacts went to, or "".
func (e *Env) Artifacts() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.artifacts
}

// artifactsDir is this Env's folder of ArtifactsDir, named after the test
// and the time it was first asked for.
func (e *Env) artifactsDir() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.artifacts == "" {
		test := "run"
		if n, ok := e.t.(interface{ Name() string }); ok && n.Name() != "" {
			test = n.Name()
		}
		test = strings.Trim(unsafeChars.ReplaceAllString(test, "_"), "_")
		if len(test) > 100 {
			test = test[:100]
		}
		e.artifacts = filepath.Join(ArtifactsDir(), time.Now().Format("20060102-150405.000")+"-"+test)
	}
	return e.artifacts
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SaveArtifacts writes w's full-page screenshot (<name>.png), DOM
// (<name>.html) and console log (<name>.console.txt) into a folder of
// ArtifactsDir named after the test and the time, and returns the folder.
// Whatever could be read is written even when something else failed.
func (e *Env) SaveArtifacts(w *Web) (string, error) {
	dir := e.artifactsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	base := filepath.Join(dir, unsafeChars.ReplaceAllString(w.name, "_"))
	// The spec's context is over by cleanup: a fresh, short one.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []string
	if png, err := w.Screenshot(ctx); err == nil {
		err = os.WriteFile(base+".png", png, 0o644)
		if err != nil {
			errs = append(errs, err.Error())
		}
	} else {
		errs = append(errs, err.Error())
	}
	if html, err := w.HTML(ctx); err == nil {
		if err := os.WriteFile(base+".html", []byte(html), 0o644); err != nil {
			errs = append(errs, err.Error())
		}
	} else {
		errs = append(errs, err.Error())
	}
	logs := strings.Join(append([]string{"# " + w.URL}, w.ConsoleLogs()...), "\n") + "\n"
	if err := os.WriteFile(base+".console.txt", []byte(logs), 0o644); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return dir, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return dir, nil
}
