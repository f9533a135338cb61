package relay

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// wsBuffer is the size of a WebSocket's read and write buffers. net/http
// hands a hijacked connection 4 KiB of each, held for the connection's
// life: 8 KiB of heap per idle device, twice that in RSS once the garbage
// collector's headroom is counted. A frame of up to ~1 KiB still takes one
// system call each way; a bigger one takes one more.
const wsBuffer = 1 << 10

// smallBuffers gives the WebSocket library, when it hijacks the
// connection, buffers of wsBuffer bytes instead of net/http's.
type smallBuffers struct{ http.ResponseWriter }

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// What the client sent after its request (its first WebSocket
	// message, perhaps) is still in net/http's buffer. It moves into the
	// new one, where Buffered counts it: the library keeps what is
	// buffered at the hijack and reads the connection after it.
	pending, err := brw.Reader.Peek(brw.Reader.Buffered())
	if err == nil {
		br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pending), nc), max(wsBuffer, len(pending)))
		if _, err = br.Peek(len(pending)); err == nil {
			return nc, bufio.NewReadWriter(br, bufio.NewWriterSize(nc, wsBuffer)), nil
		}
	}
	nc.Close()
	return nil, nil, err
}
