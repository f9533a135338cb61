package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"syscall/js"
)

// roundTrip makes r with the page's fetch: net/http's own browser transport
// would link all of net/http and crypto/tls into the web app. The upload is
// read into memory first (fetch streams a request body only over HTTP/2,
// as net/http's transport does not either); the download streams.
func roundTrip(ctx context.Context, r mediaRequest) (*mediaResponse, error) {
	abort := js.Global().Get("AbortController").New()
	stop := context.AfterFunc(ctx, func() { abort.Call("abort") })
	headers := js.Global().Get("Headers").New()
	for k, v := range r.header {
		headers.Call("set", k, v) // forbidden names (Expect) are dropped by the browser
	}
	init := map[string]any{"method": r.method, "headers": headers, "signal": abort.Get("signal"), "cache": "no-store"}
	if r.body != nil {
		var buf bytes.Buffer
		buf.Grow(int(r.size))
		if _, err := buf.ReadFrom(r.body); err != nil {
			stop()
			return nil, err
		}
		body := js.Global().Get("Uint8Array").New(buf.Len())
		js.CopyBytesToJS(body, buf.Bytes())
		init["body"] = body
	}
	res, err := await(js.Global().Call("fetch", r.url, init))
	if err != nil {
		stop()
		return nil, fmt.Errorf("fetch %s %s: %w", r.method, r.url, err)
	}
	body := &fetchBody{ctx: ctx, stop: stop, done: true}
	if stream := res.Get("body"); !stream.IsNull() { // null: a 204, say
		body.reader, body.done = stream.Call("getReader"), false
	}
	resp := &mediaResponse{status: res.Get("status").Int(), body: body}
	if cr := res.Get("headers").Call("get", "Content-Range"); !cr.IsNull() {
		resp.contentRange = cr.String()
	}
	return resp, nil
}

// fetchBody reads a fetch response's body stream.
type fetchBody struct {
	ctx    context.Context
	reader js.Value
	stop   func() bool
	chunk  []byte
	done   bool
}

func (b *fetchBody) Read(p []byte) (int, error) {
	for len(b.chunk) == 0 {
		if b.done {
			return 0, io.EOF
		}
		res, err := await(b.reader.Call("read"))
		if err != nil {
			if b.ctx.Err() != nil {
				return 0, b.ctx.Err()
			}
			return 0, err
		}
		if res.Get("done").Bool() {
			b.done = true
			continue
		}
		v := res.Get("value")
		b.chunk = make([]byte, v.Get("byteLength").Int())
		js.CopyBytesToGo(b.chunk, v)
	}
	n := copy(p, b.chunk)
	b.chunk = b.chunk[n:]
	return n, nil
}

func (b *fetchBody) Close() error {
	if !b.done {
		b.reader.Call("cancel")
	}
	b.stop()
	return nil
}

// await waits for promise to settle.
func await(promise js.Value) (js.Value, error) {
	type settled struct {
		value js.Value
		err   error
	}
	ch := make(chan settled, 1) // the callbacks must not block the page
	resolve := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- settled{value: args[0]}
		return nil
	})
	defer resolve.Release()
	reject := js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- settled{err: errors.New(args[0].Call("toString").String())}
		return nil
	})
	defer reject.Release()
	promise.Call("then", resolve, reject)
	s := <-ch
	return s.value, s.err
}
