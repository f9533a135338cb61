package driver

import (
	"context"
	"time"
)

// Timeline is when the page's start-up steps happened, in milliseconds
// since the navigation started (the page's performance.timeOrigin), read
// from its performance timeline: the navigation's and app.wasm's resource
// timing, and the marks the app sets as it starts ("linksim.<step>").
type Timeline struct {
	// Origin is the page's time origin (the navigation's start).
	Origin time.Time
	// Steps holds each step's first occurrence: "html" (the page's
	// response ended), "dom" (DOMContentLoaded ended), "load" (the load
	// event ended), "wasm.fetched" (app.wasm's response ended) and the
	// app's marks by name without "linksim.".
	Steps map[string]float64
	// WasmBytes is what app.wasm's fetch transferred over the network: 0
	// when the HTTP cache served it without a request.
	WasmBytes int
}

// Timeline reads the page's start-up timeline.
func (p *Page) Timeline(ctx context.Context) (Timeline, error) {
	type read struct {
		Origin    float64
		Steps     map[string]float64
		WasmBytes int
	}
	r, err := eval[read](ctx, p, "read the start-up timeline", `(() => {
		const steps = {};
		const nav = performance.getEntriesByType("navigation")[0];
		if (nav) {
			steps["html"] = nav.responseEnd;
			if (nav.domContentLoadedEventEnd) steps["dom"] = nav.domContentLoadedEventEnd;
			if (nav.loadEventEnd) steps["load"] = nav.loadEventEnd;
		}
		const wasm = performance.getEntriesByType("resource").find((e) => new URL(e.name).pathname.endsWith("/app.wasm"));
		if (wasm) steps["wasm.fetched"] = wasm.responseEnd;
		for (const m of performance.getEntriesByType("mark")) {
			const name = m.name.replace(/^linksim\./, "");
			if (name !== m.name && !(name in steps)) steps[name] = m.startTime;
		}
		return {Origin: performance.timeOrigin, Steps: steps, WasmBytes: wasm ? wasm.transferSize : 0};
	})()`)
	if err != nil {
		return Timeline{}, err
	}
	return Timeline{Origin: time.UnixMicro(int64(r.Origin * 1000)), Steps: r.Steps, WasmBytes: r.WasmBytes}, nil
}
