package e2e

import "encoding/json"

// The web app keeps encoding/json, which it links anyway:
// segmentio/encoding made app.wasm 1.1 MB (10%) larger, and download and
// compile are most of page opened -> QR drawn.
var jsonMarshal, jsonUnmarshal = json.Marshal, json.Unmarshal
