package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linksim/linksim/sim/wire/pb"
)

// askUpload sends MediaUpload for blob and returns the answer frame.
func (c *client) askUpload(blob []byte) *pb.Frame {
	c.t.Helper()
	sum := sha256.Sum256(blob)
	return c.do(&pb.Frame{Body: &pb.Frame_MediaUpload{MediaUpload: &pb.MediaUpload{Size: uint64(len(blob)), EncSha256: sum[:]}}})
}

// uploadToken asks for a token for blob and checks one was given.
func (c *client) uploadToken(blob []byte) *pb.MediaUploadToken {
	c.t.Helper()
	tok := c.askUpload(blob).GetMediaUploadToken()
	if tok.GetToken() == "" || tok.GetExists() {
		c.t.Fatalf("%s: MediaUpload answered %v, want a token", c.name, tok)
	}
	return tok
}

func put(t *testing.T, s *Server, path string, body io.Reader, size int64) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(msg))
}

func get(t *testing.T, s *Server, path, rangeHeader string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	if rangeHeader != "" {
		req.Header.Set("Range", rangeHeader)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func blob(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// stored lists the files in the relay's blob and temp dirs.
func stored(t *testing.T, dataDir string) (blobs, tmp []string) {
	t.Helper()
	for dir, out := range map[string]*[]string{"blobs": &blobs, "tmp": &tmp} {
		entries, err := os.ReadDir(filepath.Join(dataDir, "media", dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			*out = append(*out, e.Name())
		}
	}
	return blobs, tmp
}

func TestMediaUploadAndRangeDownload(t *testing.T) {
	dir := t.TempDir()
	s := startRelay(t, Config{DataDir: dir})
	alice := phone(t, s, "alice", "+15550100")
	data := blob(100_000)
	tok := alice.uploadToken(data)
	if code, msg := put(t, s, tok.Url, bytes.NewReader(data), int64(len(data))); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s, want 201", code, msg)
	}
	sum := sha256.Sum256(data)
	if want := "/media/" + hex.EncodeToString(sum[:]); tok.DirectPath != want {
		t.Errorf("direct path %q, want %q", tok.DirectPath, want)
	}
	if code, got := get(t, s, tok.DirectPath, ""); code != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET: %d and %d bytes, want 200 and the %d bytes uploaded", code, len(got), len(data))
	}
	if code, got := get(t, s, tok.DirectPath, "bytes=60000-"); code != http.StatusPartialContent || !bytes.Equal(got, data[60000:]) {
		t.Fatalf("GET from byte 60000: %d and %d bytes, want 206 and the last %d", code, len(got), len(data)-60000)
	}
	// The same blob again: the relay says it has it, and a repeated PUT
	// with the first token stores nothing new.
	if again := alice.askUpload(data).GetMediaUploadToken(); !again.Exists || again.Token != "" || again.DirectPath != tok.DirectPath {
		t.Errorf("MediaUpload of a stored blob answered %v, want exists and its direct path", again)
	}
	if code, msg := put(t, s, tok.Url, bytes.NewReader(data), int64(len(data))); code != http.StatusOK {
		t.Errorf("PUT of a stored blob: %d %s, want 200", code, msg)
	}
	if blobs, _ := stored(t, dir); len(blobs) != 1 {
		t.Errorf("%d blobs stored, want 1", len(blobs))
	}
	if code, _ := get(t, s, "/media/"+strings.Repeat("ab", 32), ""); code != http.StatusNotFound {
		t.Errorf("GET of an unknown blob: %d, want 404", code)
	}
}

func TestMediaUploadRefusals(t *testing.T) {
	dir := t.TempDir()
	// A TTL long enough for the refusals below on a loaded machine.
	s := startRelay(t, Config{DataDir: dir, MaxMediaBytes: 1 << 20, MediaTokenTTL: 2 * time.Second})
	alice := phone(t, s, "alice", "+15550100")
	data := blob(5000)

	if e := alice.askUpload(blob(1<<20 + 1)).GetError(); e.GetCode() != pb.ErrorCode_MEDIA_TOO_LARGE {
		t.Errorf("token for a blob over MaxMediaBytes: %v, want MEDIA_TOO_LARGE", e)
	}
	anon := dial(t, s, "anonymous")
	if e := anon.askUpload(data).GetError(); e.GetCode() != pb.ErrorCode_UNAUTHENTICATED {
		t.Errorf("token for an anonymous connection: %v, want UNAUTHENTICATED", e)
	}
	tok := alice.uploadToken(data)
	tampered := bytes.Clone(data)
	tampered[100] ^= 1
	cases := []struct {
		name string
		path string
		body io.Reader
		size int64 // -1: chunked, no Content-Length
		want int
	}{
		{"unknown token", "/media/nosuchtoken", bytes.NewReader(data), 5000, http.StatusForbidden},
		{"other bytes", tok.Url, bytes.NewReader(tampered), 5000, http.StatusBadRequest},
		{"Content-Length above the limit", tok.Url, bytes.NewReader(blob(2 << 20)), 2 << 20, http.StatusRequestEntityTooLarge},
		{"Content-Length above the token's size", tok.Url, bytes.NewReader(blob(5001)), 5001, http.StatusRequestEntityTooLarge},
		{"Content-Length below the token's size", tok.Url, bytes.NewReader(data[:4999]), 4999, http.StatusBadRequest},
		{"chunked, longer than announced", tok.Url, io.MultiReader(bytes.NewReader(data), bytes.NewReader(data)), -1, http.StatusRequestEntityTooLarge},
		{"chunked, shorter than announced", tok.Url, bytes.NewReader(data[:10]), -1, http.StatusBadRequest},
	}
	for _, c := range cases {
		if code, msg := put(t, s, c.path, c.body, c.size); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.name, code, msg, c.want)
		}
	}
	if blobs, tmp := stored(t, dir); len(blobs)+len(tmp) != 0 {
		t.Errorf("refused uploads left %v stored and %v in temp", blobs, tmp)
	}
	awaitCount(t, "upload tokens", 0, func() int { return uploadTokens(s) }) // expired and swept
	if code, msg := put(t, s, tok.Url, bytes.NewReader(data), 5000); code != http.StatusForbidden {
		t.Errorf("upload with an expired token: %d %q, want 403", code, msg)
	}
}

// TestMediaUploadCutThenRetried cuts an upload halfway (the client's
// connection closes), then retries it with the same token.
func TestMediaUploadCutThenRetried(t *testing.T) {
	dir := t.TempDir()
	s := startRelay(t, Config{DataDir: dir})
	alice := phone(t, s, "alice", "+15550100")
	data := blob(1 << 20)
	tok := alice.uploadToken(data)

	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: relay\r\nContent-Length: %d\r\n\r\n", tok.Url, len(data))
	conn.Write(data[:len(data)/2])
	conn.Close()
	// The relay removes the partial upload once it sees the cut.
	deadline := time.Now().Add(waitFor)
	for {
		blobs, tmp := stored(t, dir)
		if len(blobs) != 0 {
			t.Fatalf("a cut upload became visible as %v", blobs)
		}
		if len(tmp) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cut upload is still in temp after %v: %v", waitFor, tmp)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, msg := put(t, s, tok.Url, bytes.NewReader(data), int64(len(data))); code != http.StatusCreated {
		t.Fatalf("retried PUT: %d %s, want 201", code, msg)
	}
	if code, got := get(t, s, tok.DirectPath, ""); code != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET after the retry: %d, %d bytes; want the %d bytes uploaded", code, len(got), len(data))
	}
}

// TestMediaExpires checks the sweeper forgets a blob after MediaTTL, and
// that a blob announced again lives on.
func TestMediaExpires(t *testing.T) {
	dir := t.TempDir()
	s := startRelay(t, Config{DataDir: dir, MediaTTL: 300 * time.Millisecond})
	alice := phone(t, s, "alice", "+15550100")
	old, kept := blob(1000), blob(2000)
	for _, b := range [][]byte{old, kept} {
		tok := alice.uploadToken(b)
		if code, msg := put(t, s, tok.Url, bytes.NewReader(b), int64(len(b))); code != http.StatusCreated {
			t.Fatalf("PUT: %d %s", code, msg)
		}
	}
	deadline := time.Now().Add(waitFor)
	for {
		// Announcing kept again restarts its time to live.
		if !alice.askUpload(kept).GetMediaUploadToken().GetExists() {
			t.Fatal("a blob announced every few ms expired")
		}
		blobs, _ := stored(t, dir)
		if len(blobs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("blobs %v still stored %v after upload, MediaTTL is 300ms", blobs, waitFor)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sum := sha256.Sum256(old)
	if code, _ := get(t, s, "/media/"+hex.EncodeToString(sum[:]), ""); code != http.StatusNotFound {
		t.Errorf("GET of an expired blob: %d, want 404", code)
	}
}

// TestMediaSurvivesRestart checks blobs outlive the relay and a crashed
// upload's temp file does not.
func TestMediaSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Serve(Config{DataDir: dir}, "127.0.0.1:0") // closed below, not at cleanup
	if err != nil {
		t.Fatal(err)
	}
	alice := phone(t, s, "alice", "+15550100")
	data := blob(3000)
	tok := alice.uploadToken(data)
	if code, msg := put(t, s, tok.Url, bytes.NewReader(data), int64(len(data))); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, msg)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "media", "tmp", "upload-crashed"), []byte("half"), 0o600)
	s = startRelay(t, Config{DataDir: dir})
	if code, got := get(t, s, tok.DirectPath, ""); code != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("GET after a restart: %d, %d bytes", code, len(got))
	}
	if _, tmp := stored(t, dir); len(tmp) != 0 {
		t.Errorf("temp files %v survived the restart", tmp)
	}
}

func TestMediaAllowsAnyOrigin(t *testing.T) {
	srv, err := Serve(Config{NoSync: true}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodOptions, srv.URL()+"/media/abc", nil)
	req.Header.Set("Origin", "http://127.0.0.1:1")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight: status %d, Access-Control-Allow-Origin %q; want 204 and *", resp.StatusCode, got)
	}
}
