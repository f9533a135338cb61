// Package sim_test holds the check of design.md section 3: imports point one
// way, sim -> (phone, webclient) -> harness -> (scenarios, load) -> cmd, reports
// stands apart, and the product layers stay free of test and browser code.
package sim_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/linksim/linksim/"

// layerOf maps a package to its layer: the first path element, with
// webclient/driver apart (it alone may use chromedp).
func layerOf(pkg string) string {
	rel := strings.TrimPrefix(pkg, module)
	if strings.HasPrefix(rel, "webclient/driver") {
		return "driver"
	}
	return strings.SplitN(rel, "/", 2)[0]
}

// mayImport lists, per layer, the linksim layers it may import.
var mayImport = map[string][]string{
	"sim":       {"sim"},
	"phone":     {"sim", "phone"},
	"webclient": {"sim", "webclient"},
	"driver":    {"sim", "webclient", "driver", "phone"},
	"reports":   {"reports"},
	"harness":   {"sim", "phone", "webclient", "driver", "reports", "harness"},
	"scenarios": {"sim", "phone", "webclient", "driver", "reports", "harness", "scenarios"},
	"load":      {"sim", "phone", "webclient", "driver", "reports", "harness", "load"},
	"cmd":       {"sim", "phone", "webclient", "driver", "reports", "harness", "scenarios", "load", "cmd"},
}

// productLayers must not depend, even indirectly, on test or browser code.
var productLayers = []string{"sim", "phone", "webclient"}

var forbidden = []string{"testing", "github.com/onsi/", "github.com/chromedp/", "github.com/testcontainers/"}

func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .Deps \",\"}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		pkg, imports, deps := parts[0], strings.Split(parts[1], ","), strings.Split(parts[2], ",")
		layer := layerOf(pkg)
		allowed, known := mayImport[layer]
		if !known {
			t.Errorf("%s: layer %q is not in the layering rules; add it to design and this test", pkg, layer)
			continue
		}
		checked++
		for _, imp := range imports {
			if strings.HasPrefix(imp, module) && !contains(allowed, layerOf(imp)) {
				t.Errorf("%s (layer %s) imports %s (layer %s): imports must point down", pkg, layer, imp, layerOf(imp))
			}
		}
		if !contains(productLayers, layer) {
			continue
		}
		for _, dep := range deps {
			for _, bad := range forbidden {
				if dep == bad || strings.HasPrefix(dep, bad) && strings.HasSuffix(bad, "/") {
					t.Errorf("%s depends on %s: product code must not carry test or browser code", pkg, dep)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d packages; go list output:\n%s", checked, out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
